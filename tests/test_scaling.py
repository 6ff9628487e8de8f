"""Scaling out with DVC's own engines (docs/scaling.md): several machines that share one remote
split the training between them and none computes a stage another already did (the run cache), and
a sweep queued with `dvc exp run --queue` runs on two workers at once (`dvc queue start -j 2`)."""

import csv
import io
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.conftest import SMALL_EXPERIMENTS, prepare_project, sh, user_env
from tests.test_pipeline import ran

pytestmark = pytest.mark.e2e


def restored(out: str) -> set[str]:
    """The stages `dvc repro` printed that it took from the run cache instead of running them."""
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Stage '") and "is cached" in line}


def shared_project(root, remote) -> None:
    """The commit every machine clones: the small project with `remote` as its default remote, the
    stages above training run once and pushed. One seed per experiment and one grid keep the
    downstream stages quick."""
    prepare_project(root)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["seeds"] = dict.fromkeys(raw["experiments"], 1)
    raw["invariance"]["experiments"] = ["mlp_translated"]
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sh("dvc", "remote", "add", "-d", "shared", str(remote), cwd=root)
    assert ran(sh("dvc", "repro", "translate", cwd=root).stdout) == {"translate@mnist", "translate@fashion_mnist"}
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "the shared commit: data translated, a shared remote", cwd=root)
    sh("dvc", "push", cwd=root)


def test_three_machines_split_the_training_and_the_third_trains_nothing(tmp_path):
    origin, remote = tmp_path / "origin", tmp_path / "remote"
    origin.mkdir()
    shared_project(origin, remote)
    # Each clone has its own DVC cache (.dvc/cache is not in git): only the remote is shared.
    machines = {name: tmp_path / name for name in "abc"}
    for folder in machines.values():
        sh("git", "clone", "-q", str(origin), str(folder), cwd=tmp_path)
    share = {"a": [f"train@{name}" for name in SMALL_EXPERIMENTS[:2]],
             "b": [f"train@{name}" for name in SMALL_EXPERIMENTS[2:]]}

    def train_and_push(machine: str) -> str:
        # --pull fetches the translated data the train stages read
        out = sh("dvc", "repro", "--pull", "--single-item", *share[machine], cwd=machines[machine]).stdout
        sh("dvc", "push", "--run-cache", cwd=machines[machine])
        return out

    with ThreadPoolExecutor(2) as pool:  # A and B at the same time, as two machines would
        printed = dict(zip(share, pool.map(train_and_push, share)))
    for machine, stages in share.items():
        assert ran(printed[machine]) == set(stages)

    out = sh("dvc", "repro", "--pull", cwd=machines["c"]).stdout
    trains = {f"train@{name}" for name in SMALL_EXPERIMENTS}
    assert restored(out) == trains
    assert ran(out) == {"compare", "plots", "report", "invariance@mlp_translated",
                        *(f"{stage}@{name}" for name in SMALL_EXPERIMENTS for stage in ("evaluate", "seeds"))}
    for machine, stages in share.items():
        for name in (stage.removeprefix("train@") for stage in stages):
            made, got = machines[machine] / "data", machines["c"] / "data"
            assert (got / f"models/{name}.keras").read_bytes() == (made / f"models/{name}.keras").read_bytes()
            log = sorted(p.relative_to(made) for p in (made / "training" / name).rglob("*") if p.is_file())
            assert log and all((got / p).read_bytes() == (made / p).read_bytes() for p in log)
    assert "Data and pipelines are up to date." in sh("dvc", "status", "dvc.yaml", cwd=machines["c"]).stdout


def wait_for_queue(root, names: list[str], seconds: float = 600) -> int:
    """Wait until the queued experiments `names` have all finished; returns the most seen running at once.
    A task being handed to a worker is briefly listed nowhere, so only a final state counts as finished."""
    most_running, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = [line.split() for line in sh("dvc", "queue", "status", cwd=root).stdout.splitlines()]
        state = {fields[1]: fields[-1] for fields in rows if len(fields) > 2 and fields[1] in names}
        most_running = max(most_running, list(state.values()).count("Running"))
        if failed := [name for name, value in state.items() if value == "Failed"]:
            raise AssertionError(sh("dvc", "queue", "logs", failed[0], cwd=root, check=False).stdout)
        if all(state.get(name) == "Success" for name in names):
            return most_running
        time.sleep(1)
    raise AssertionError(f"the queue did not finish in {seconds} s: {state}")


def test_a_sweep_queued_runs_on_two_workers_and_exp_show_compares_it(project_copy):
    root, rates = project_copy, ["0.001", "0.004"]
    names = []
    for rate in rates:  # evaluate@mlp_translated: train and score only that model, not the whole pipeline
        queued = sh("dvc", "exp", "run", "--queue", "-S", f"experiments.mlp_translated.learning_rate={rate}",
                    "evaluate@mlp_translated", cwd=root).stdout
        names += [line.split("'")[1] for line in queued.splitlines() if line.startswith("Queued experiment '")]
    assert len(names) == len(rates)
    try:
        # Output to a file, not a pipe: the workers inherit it, and reading a pipe would wait for them to exit.
        with open(root.parent / "queue-start.log", "w") as log:
            subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=root, env=user_env(), stdout=log,
                           stderr=subprocess.STDOUT, check=True)
        assert wait_for_queue(root, names) == 2  # both at once
    finally:  # the workers are detached processes: never leave them behind, even after a failure
        sh("dvc", "queue", "stop", "--kill", cwd=root, check=False)

    rows = [row for row in csv.DictReader(io.StringIO(sh("dvc", "exp", "show", "--csv", cwd=root).stdout))
            if row["Experiment"]]
    assert sorted(row["Experiment"] for row in rows) == sorted(names)
    assert sorted(row["experiments.mlp_translated.learning_rate"] for row in rows) == rates
    assert all(row["State"] == "Success" for row in rows)
    column = next(name for name in rows[0] if name.endswith("mlp_translated.test_accuracy"))  # a headline metric
    accuracies = {row[column] for row in rows}
    assert len(accuracies) == 2 and all(0 <= float(a) <= 1 for a in accuracies)
    for row in rows:
        assert ran(sh("dvc", "queue", "logs", row["Experiment"], cwd=root).stdout) == {
            "train@mlp_translated", "evaluate@mlp_translated"}
