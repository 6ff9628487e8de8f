"""End to end: `dvc repro` of the whole pipeline in a temporary git copy of this repository.

The data are synthetic and small, with one experiment per model and two invariance grids,
each trained for a few steps: this checks the wiring (dvc.yaml, params, files between
stages, report), not accuracy. The real download is tested in test_download.py (marked `network`).
"""

import ast
import json

import pytest
import yaml

from stages import files
from tests.conftest import REPO, sh

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(small_project):
    """The shared small project and what its `dvc repro` printed; tests here only read it."""
    root, out = small_project
    return root, yaml.safe_load((root / "params.yaml").read_text()), out


def ran(out: str) -> set[str]:
    """The stages `dvc repro` printed that it ran."""
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def test_repro_runs_every_stage_and_writes_every_declared_output(project):
    root, params, out = project
    per_experiment = ("train", "evaluate", "seeds")
    assert ran(out) == {"translate@mnist", "translate@fashion_mnist", "compare", "plots", "report",
                        *(f"{stage}@{name}" for name in params["experiments"] for stage in per_experiment),
                        *(f"invariance@{name}" for name in params["invariance"]["experiments"])}
    study = json.loads((root / "reports/metrics/seeds/linear_mnist.json").read_text())
    assert study["seeds"] == [1, 2] and study["sd"] is not None
    comparisons = json.loads((root / "reports/comparisons.json").read_text())
    # every two experiments of one dataset, a benchmark protocol's among themselves
    questions = [(exp["dataset"], exp["data"] if exp["data"] in params["translate"]["protocols"] else None)
                 for exp in params["experiments"].values()]
    per_question = [questions.count(q) for q in set(questions)]
    assert len(comparisons["pairs"]) == sum(n * (n - 1) // 2 for n in per_question) and len(per_question) == 4
    assert {test["experiment"] for test in comparisons["published"].values()} == {"cnn_bn_translated60",
                                                                                  "cnn_bn_cluttered60"}
    for name in params["experiments"]:
        assert (root / f"data/models/{name}.keras").stat().st_size > 0
        metrics = json.loads((root / f"reports/metrics/{name}.json").read_text())
        assert 0 <= metrics["test_accuracy"] <= 1 and metrics["steps"] == 80 and metrics["stopped_by"] == "epochs"
        rows = (root / f"reports/predictions/{name}.csv").read_text().splitlines()
        assert rows[0] == "index,actual,predicted,confidence" and len(rows) == 201
        for log in (root / "data/training" / name, root / "reports/training" / name):  # the run, and its copy
            assert json.loads((log / "metrics.json").read_text())["steps"] == 80
            assert len((log / "plots/metrics/val/accuracy.tsv").read_text().splitlines()) == 1 + 4  # header, epochs
    for name in params["invariance"]["experiments"]:
        grid = json.loads((root / f"reports/metrics/invariance/{name}.json").read_text())["grid"]
        assert len(grid) == len(grid[0]) == 32 - 28 + 1
    assert not (root / "live").exists()  # each run's live log, gone once published
    translated = files.load_npz(root / "data/translated/mnist/translated.npz")
    assert translated["x_train"].shape == (500, 32, 32) and translated["x_val"].shape == (100, 32, 32)


def test_report_artifacts_exist_are_non_empty_and_the_page_embeds_every_figure(project):
    root, _, _ = project
    figures = sorted((root / "reports/figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 1000 for f in figures)
    markdown = (root / "reports/report.md").read_text()
    page = (root / "reports/index.html").read_text()
    for figure in figures:
        assert f"figures/{figure.name}" in markdown
    assert page.count('src="data:image/png;base64,') == len(figures)


def test_a_second_repro_has_nothing_to_do(project):
    root, _, _ = project
    assert ran(sh("dvc", "repro", cwd=root).stdout) == set()


def test_changing_one_experiment_reruns_only_that_experiment_and_metrics_diff_lists_only_what_changed(project_copy):
    root, name = project_copy, "mlp_translated"
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["experiments"][name]["learning_rate"] = 0.0005
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert ran(sh("dvc", "repro", cwd=root).stdout) == {f"train@{name}", f"evaluate@{name}", f"seeds@{name}",
                                                        f"invariance@{name}", "compare", "plots", "report"}
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "another learning rate", cwd=root)
    changed = json.loads(sh("dvc", "metrics", "diff", "HEAD~1", "--json", cwd=root).stdout)
    # this experiment's headline numbers, and nothing else: no timing, no other experiment, no grid or seed list
    assert f"reports/headlines/{name}.json" in changed
    assert set(changed) <= {f"reports/headlines/{name}.json", f"reports/headlines/invariance/{name}.json"}
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=root).stdout)[""]["data"]
    assert set(shown) == {*(f"reports/headlines/{e}.json" for e in raw["experiments"]),
                          *(f"reports/headlines/invariance/{e}.json" for e in raw["invariance"]["experiments"])}
    assert shown[f"reports/headlines/{name}.json"]["data"][name].keys() == {"test_accuracy", "low", "high"}
    assert "0.0005" in sh("dvc", "params", "diff", "HEAD~1", cwd=root).stdout


def test_a_forced_rebuild_that_trains_the_same_models_changes_no_committed_file(project_copy):
    """No wall-clock time in anything committed (metrics, logs, report, dvc.lock's hashes). Every stage after
    the download (which here holds a stand-in for MNIST) runs again; the speed benchmarks are not this pipeline."""
    sh("git", "rm", "-q", "benchmarks/dvc.yaml", cwd=project_copy)
    sh("git", "commit", "-q", "-m", "the main pipeline alone", cwd=project_copy)
    sh("dvc", "repro", "-f", "--downstream", "translate", cwd=project_copy)
    assert sh("git", "status", "--porcelain", cwd=project_copy).stdout == ""


def with_merged_defaults(raw: dict) -> str:
    """params.yaml written as the committed one is: each experiment merges `defaults` and states what differs."""
    defaults = raw["defaults"]
    experiments = {name: {key: value for key, value in exp.items() if defaults[key] != value}
                   for name, exp in raw["experiments"].items()}
    text = yaml.safe_dump({key: raw[key] for key in ("datasets", "data", "translate")}, sort_keys=False)
    text += "defaults: &defaults\n" + yaml.safe_dump(defaults, sort_keys=False).replace("\n", "\n  ").join(["  ", ""])
    text = text.rstrip() + "\nexperiments:\n"
    for name, own in experiments.items():
        text += f"  {name}:\n    <<: *defaults\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in own.items())
    return text + yaml.safe_dump({key: raw[key] for key in ("seeds", "invariance")}, sort_keys=False)


def changed_stages(root) -> set[str]:
    status = sh("dvc", "status", "dvc.yaml", cwd=root).stdout  # the main pipeline, not the benchmarks
    return {line.rstrip(":") for line in status.splitlines() if line.endswith(":") and not line.startswith("\t")}


def test_a_changed_default_reruns_exactly_the_experiments_that_take_it(project_copy):
    root = project_copy
    raw = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(with_merged_defaults(raw))
    assert yaml.safe_load((root / "params.yaml").read_text()) == raw  # the same settings, written with merges
    assert changed_stages(root) == set()
    # linear_mnist and cnn_centre state their own placement; the others take the default's
    takes_default = [name for name, exp in raw["experiments"].items() if exp["placement"] == "fresh"]
    assert "mlp_translated" in takes_default and "fashion_cnn_gap_translated" in takes_default
    params_file = root / "params.yaml"
    params_file.write_text(params_file.read_text().replace("placement: fresh", "placement: fixed", 1))
    assert changed_stages(root) == {*(f"{stage}@{name}" for name in takes_default for stage in ("train", "seeds")),
                                    "compare", "plots", "report"}


def test_editing_the_translate_stage_reruns_it_alone(project_copy):
    root = project_copy
    with open(root / "stages/translate.py", "a") as f:
        f.write("# an edit that changes nothing the stage writes\n")
    assert ran(sh("dvc", "repro", cwd=root).stdout) == {"translate@mnist", "translate@fashion_mnist"}


def stages_imported_by(module: str, seen: set[str] | None = None) -> set[str]:
    """Every module of the `stages` package that `module` imports, directly or through another."""
    seen = set() if seen is None else seen
    tree = ast.parse((REPO / "stages" / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "stages":
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
            names = [node.module.removeprefix("stages.")]
        else:
            continue
        for name in set(names) - seen:
            seen.add(name)
            stages_imported_by(name, seen)
    return seen


def test_every_stage_depends_on_all_the_code_it_runs():
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        stage = stage.get("do", stage)
        module = stage["cmd"].split()[2].removeprefix("stages.")
        # Python runs the package's __init__ (which sets TensorFlow's options) before any of its modules
        code = {f"stages/{m}.py" for m in stages_imported_by(module) | {module, "__init__"}}
        assert code <= set(stage["deps"]), f"{name} misses {sorted(code - set(stage['deps']))}"


def test_no_module_imports_a_stage_module():
    """Shared code lives in shared modules, so DVC reruns exactly the stages whose code changed."""
    stages = {stage.get("do", stage)["cmd"].split()[2].removeprefix("stages.")
              for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()}
    for path in [*(REPO / "stages").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]:
        imported = stages_imported_by(path.stem) if path.parent.name == "stages" else {
            name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
            and node.module == "stages" for name in (alias.name for alias in node.names)}
        assert not (imported & stages) - {path.stem}, f"{path.name} imports {sorted(imported & stages)}"
