"""End to end: `dvc repro` of the whole pipeline in a temporary git copy of this repository.

The data are synthetic and small and every experiment trains for a few steps: this
checks the wiring (dvc.yaml, params, files between stages, report), not accuracy.
The real download is tested in test_download.py (marked `network`).
"""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import files

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def sh(*args, cwd, check=True) -> str:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def copy_repo(dest: Path) -> None:
    """The files git would commit here (tracked or not ignored), without results or lock.

    The benchmark's JSON stays: it is an input of the report, not a pipeline output."""
    listed = sh("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=REPO).split("\n")
    for name in filter(None, listed):
        results = name.startswith(("reports/", "data/")) and not name.startswith("reports/benchmark")
        if name == "dvc.lock" or results or not (REPO / name).exists():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)


def small_profile(raw: dict) -> dict:
    raw["data"]["validation_size"] = 100
    raw["translate"]["canvas"] = 32
    for exp in raw["experiments"].values():
        exp |= {"epochs": 2, "max_steps": 4, "batch_size": 32, "warmup_epochs": 0}
    raw["invariance"]["test_digits"] = 20
    return raw


def synthetic_mnist(n_train=600, n_test=200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "y_train": (np.arange(n_train) % 10).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "y_test": (np.arange(n_test) % 10).astype(np.uint8)}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    copy_repo(root)
    params = small_profile(yaml.safe_load((root / "params.yaml").read_text()))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "the project", cwd=root)  # DVCLive fails in a repo without commits
    # The download stage only accepts the real MNIST; here its output is a tiny stand-in,
    # recorded with `dvc commit` so that repro starts at `translate`.
    files.save_npz(root / "data/raw/mnist.npz", **synthetic_mnist())
    files.write_json(root / "data/raw/source.json", {"source": "synthetic test data"})
    sh("dvc", "commit", "--force", "download", cwd=root)
    out = sh("dvc", "repro", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "small run", cwd=root)
    return root, params, out


def test_repro_runs_every_stage_and_writes_every_declared_output(project):
    root, params, out = project
    assert "Running stage 'download'" not in out
    for stage in ["translate", "report"] + [f"{s}@{e}" for e in params["experiments"] for s in ("train", "evaluate")]:
        assert f"Running stage '{stage}'" in out, stage
    for name in params["experiments"]:
        assert (root / f"data/models/{name}.keras").stat().st_size > 0
        metrics = json.loads((root / f"reports/metrics/{name}.json").read_text())
        assert 0 <= metrics["test_accuracy"] <= 1 and metrics["steps"] == 4 and metrics["stopped_by"] == "max_steps"
        rows = (root / f"reports/predictions/{name}.csv").read_text().splitlines()
        assert rows[0] == "index,actual,predicted,confidence" and len(rows) == 201
        assert (root / f"reports/training/{name}/plots/metrics/val/accuracy.tsv").exists()
    for name in params["invariance"]["experiments"]:
        assert f"Running stage 'invariance@{name}'" in out
        grid = json.loads((root / f"reports/metrics/invariance/{name}.json").read_text())["grid"]
        assert len(grid) == len(grid[0]) == 32 - 28 + 1
    translated = files.load_npz(root / "data/translated/translated.npz")
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
    out = sh("dvc", "repro", cwd=root)
    assert "Running stage" not in out


def test_changing_one_experiment_reruns_only_that_experiment_and_metrics_diff_compares(project):
    root, params, _ = project
    name = "linear_mnist"
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["experiments"][name]["learning_rate"] = 0.05
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out = sh("dvc", "repro", cwd=root)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {f"train@{name}", f"evaluate@{name}", "report"}
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "another learning rate", cwd=root)
    diff = sh("dvc", "metrics", "diff", "HEAD~1", "--json", cwd=root)
    changed = json.loads(diff)
    assert f"reports/metrics/{name}.json" in changed
    assert "0.05" in sh("dvc", "params", "diff", "HEAD~1", cwd=root)


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
