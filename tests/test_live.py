"""A run as it trains: its epochs in live/<run>/ where DVC's tools read them, resumed with the run, gone
when it ends; the progress line's estimate."""

import json

import pytest

from stages import datasets, live, paths, training
from tests.conftest import experiment, sh


class Peek(training.keras.callbacks.Callback):
    """What DVC would read from the live folder at the end of each epoch, while the run goes on."""

    def __init__(self, run: str):
        super().__init__()
        self.run, self.seen = run, []

    def on_epoch_end(self, epoch, logs=None):
        folder = paths.live(self.run)
        self.seen.append((json.loads((folder / "log/metrics.json").read_text())["step"],
                          len((folder / "log/plots/metrics/eval/accuracy.tsv").read_text().splitlines()) - 1,
                          (folder / "dvc.yaml").read_text()))


class StopAfter(Peek):
    def __init__(self, run: str, epochs: int):
        super().__init__(run)
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.model.stop_training = epoch + 1 == self.epochs


@pytest.fixture
def project(tiny_data, monkeypatch):
    """A folder holding the tiny datasets where the stages expect them, as the working directory."""
    monkeypatch.chdir(tiny_data)
    (paths.DATASET_DIR / "mnist").mkdir(parents=True)
    for name in ("centred.npz", "translated.npz"):
        (tiny_data / name).rename(paths.dataset("mnist", name.removesuffix(".npz")))
    return tiny_data


def fit(exp, run: str, peek: Peek, epochs_done=None):
    checkpoints = training.Checkpoints(paths.CHECKPOINTS, run,
                                       training.fingerprint(exp, paths.dataset(exp.dataset, exp.data)))
    return training.fit(exp, datasets.load(exp.dataset, exp.data), checkpoints,
                        lambda state: [*live.callbacks(f"train: {run}", run, exp.epochs, state), peek])


def test_each_epoch_is_in_the_live_folder_while_the_run_goes_on(project):
    exp, peek = experiment(epochs=3), Peek("tiny")
    fit(exp, "tiny", peek)
    assert [(step, rows) for step, rows, _ in peek.seen] == [(0, 1), (1, 2), (2, 3)]
    declared = peek.seen[0][2]
    assert "log/metrics.json" in declared and "log/plots/metrics" in declared
    assert declared.count("log/metrics.json") == 1  # one entry, not one per epoch
    live.clear("tiny")
    assert not paths.live("tiny").exists() and not paths.LIVE.exists()


def test_a_resumed_run_continues_its_live_log_at_the_next_epoch(project):
    first = Peek("tiny")
    fit(experiment(epochs=2), "tiny", first)  # as if killed after epoch 2 of 4: its checkpoint and live log stay
    second = Peek("tiny")
    fit(experiment(epochs=4), "tiny", second)  # other params: the checkpoint is discarded, the log starts again
    assert [(step, rows) for step, rows, _ in second.seen] == [(0, 1), (1, 2), (2, 3), (3, 4)]

    exp = experiment(epochs=4)
    fit(exp, "again", StopAfter("again", epochs=2))  # as if killed after its second epoch's checkpoint
    resumed = Peek("again")
    model, state = fit(exp, "again", resumed)
    assert state["epoch"] == 4 and [(step, rows) for step, rows, _ in resumed.seen] == [(2, 3), (3, 4)]


def test_a_live_log_cut_short_by_a_kill_starts_again_and_the_run_resumes(project, capsys):
    exp = experiment(epochs=4)
    fit(exp, "cut", StopAfter("cut", epochs=2))  # as if killed after its second epoch's checkpoint...
    (paths.live("cut") / "log/metrics.json").write_text("")  # ...while DVCLive rewrote its summary in place
    resumed = Peek("cut")
    model, state = fit(exp, "cut", resumed)
    assert state["epoch"] == 4 and [step for step, _, _ in resumed.seen] == [2, 3]  # the live view from here on
    assert "the live log in live/cut could not be resumed" in capsys.readouterr().err


def test_dvc_reads_the_live_log_while_it_is_there(project):
    sh("git", "init", "-q", cwd=project)
    sh("dvc", "init", "-q", cwd=project)
    (project / ".gitignore").write_text("/data/\n")
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-q", "-m", "a project", cwd=project)
    fit(experiment(epochs=2), "tiny", Peek("tiny"))
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=project).stdout)
    metrics = shown[""]["data"]["live/tiny/log/metrics.json"]["data"]  # "": the workspace
    assert metrics["step"] == 1 and set(metrics["eval"]) == {"loss", "accuracy"}
    plots = json.loads(sh("dvc", "plots", "show", "--json", cwd=project).stdout)["data"]
    assert "live/tiny/log/plots/metrics/eval/accuracy.tsv" in plots
    live.clear("tiny")
    after = sh("dvc", "metrics", "show", "--json", cwd=project)
    assert "live/tiny" not in after.stdout and not after.stderr  # nothing declared, nothing missing


@pytest.mark.parametrize("seconds, shown", [(0.4, "0 s"), (42, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")])
def test_durations_read_as_a_person_says_them(seconds, shown):
    assert live.duration(seconds) == shown
