"""The tests' data, built one way: tiny synthetic digits, the datasets the translate stage would
write from them, and a whole small project (a git copy of this repository with tiny params)
that `dvc repro` has run once, for the end-to-end and fault-injection tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import files, translate
from stages.params import Experiment, Placing

REPO = Path(__file__).resolve().parents[1]


def pytest_report_header():
    import keras

    return f"keras backend: {keras.backend.backend()}"


def synthetic_digits(n: int, seed: int, kind: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten fixed random 28x28 prototypes plus noise: learnable, but not trivially. Another `kind`, other prototypes."""
    prototypes = np.random.default_rng(kind).integers(0, 2, size=(10, 28, 28)) * 200
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    noise = rng.integers(0, 56, size=(n, 28, 28))
    return (prototypes[labels] + noise).astype(np.uint8), labels


def random_digits(n: int, seed: int = 0) -> np.ndarray:
    """Random 28x28 'digits' with no zero pixel, so that every pixel of a placed digit shows."""
    return np.random.default_rng(seed).integers(1, 256, size=(n, 28, 28), dtype=np.uint8)


def synthetic_mnist(n_train: int = 600, n_test: int = 200, kind: int = 0) -> dict[str, np.ndarray]:
    """What the download stage writes, in miniature (kind 1: the small project's stand-in for Fashion-MNIST)."""
    (x_train, y_train), (x_test, y_test) = synthetic_digits(n_train, 1, kind), synthetic_digits(n_test, 3, kind)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_datasets(folder, n_train=600, n_val=200, n_test=200, canvas=32):
    """Write centred.npz and translated.npz as the translate stage would."""
    parts = {name: synthetic_digits(n, seed) for name, n, seed in
             (("train", n_train, 1), ("val", n_val, 2), ("test", n_test, 3))}
    files.save_npz(folder / "centred.npz", **translate.centred(parts))
    files.save_npz(folder / "translated.npz",
                   **translate.translate(parts, Placing(canvas=canvas, offsets="full"), 0))


def experiment(**changes) -> Experiment:
    settings = dict(name="tiny", dataset="mnist", data="translated", placement="fixed", model="linear",
                    optimizer="adam",
                    learning_rate=0.01, schedule="constant", warmup_epochs=0, batch_size=50, epochs=2,
                    max_steps=None, patience=None, target_accuracy=None, max_seconds=None, seed=1,
                    precision="float32", data_parallel=False)
    return Experiment(**(settings | changes))


def metrics_record(accuracy: float, test_digits: int = 200) -> dict:
    """What the evaluate stage writes to reports/metrics/<experiment>.json, for an accuracy."""
    from stages import statistics

    errors = round((1 - accuracy) * test_digits)
    low, high = statistics.wilson(test_digits - errors, test_digits)
    return {"test_accuracy": accuracy, "test_loss": 1.0, "test_accuracy_low": low, "test_accuracy_high": high,
            "errors": errors, "epochs": 2, "steps": 20, "stopped_by": "epochs", "params": 1000}


@pytest.fixture
def tiny_data(tmp_path):
    write_datasets(tmp_path)
    return tmp_path


# --- a whole small project ------------------------------------------------------------------

# One experiment per model, covering both data files and the three placements, two of the second
# dataset's (so that the report compares datasets) and one on each benchmark protocol (60x60, plain and
# cluttered, so that the report sets them beside the papers); a grid for each dataset.
SMALL_EXPERIMENTS = ("linear_mnist", "mlp_translated", "cnn_centre", "cnn_gap_translated", "cnn_bn_translated",
                     "cnn_invariant_centre", "fashion_mlp_translated", "fashion_cnn_gap_translated",
                     "cnn_bn_translated60", "cnn_bn_cluttered60")
SMALL_GRIDS = ["mlp_translated", "cnn_centre", "fashion_cnn_gap_translated"]


def user_env(**changes) -> dict[str, str]:
    """The environment a user of the project has: this venv's tools first on PATH, git configured."""
    return os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                         "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                         "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"} | changes


def sh(*args, cwd, check=True, env=None) -> subprocess.CompletedProcess:
    """Run a command as a user would (see `user_env`)."""
    result = subprocess.run(args, cwd=cwd, env=user_env(**(env or {})), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def small_params(raw: dict) -> dict:
    """params.yaml cut down to seconds: tiny data, a few of the experiments, a few steps each."""
    raw["data"]["validation_size"] = 100
    raw["translate"]["canvas"] = 32
    quick = {"epochs": 4, "batch_size": 25, "warmup_epochs": 0, "learning_rate": 0.002}  # all learn, in seconds
    raw["defaults"] |= quick
    raw["experiments"] = {name: raw["experiments"][name] | quick for name in SMALL_EXPERIMENTS}
    raw["seeds"] = {name: 2 if name == "linear_mnist" else 1 for name in SMALL_EXPERIMENTS}  # one seed study
    raw["invariance"] |= {"experiments": SMALL_GRIDS, "test_digits": 20}
    return raw


def copy_repo(dest: Path) -> None:
    """The files git would commit here (tracked or not ignored), without results or lock."""
    listed = sh("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=REPO).stdout.split("\n")
    for name in filter(None, listed):
        if name == "dvc.lock" or name.startswith(("reports/", "data/")) or not (REPO / name).exists():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)


def prepare_project(root: Path) -> None:
    """A git repository with this project's code and small params, and synthetic MNIST and Fashion-MNIST
    recorded as the download stage's outputs (in dvc.lock, not yet committed to git): everything before `dvc repro`."""
    copy_repo(root)
    (root / "params.yaml").write_text(yaml.safe_dump(small_params(yaml.safe_load((root / "params.yaml").read_text())),
                                                     sort_keys=False))
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "the project", cwd=root)  # DVCLive wants a repository with a commit
    # The download stage only accepts the real MNIST; here its output is a tiny stand-in,
    # recorded with `dvc commit` so that repro starts at `translate`.
    for kind, dataset in enumerate(("mnist", "fashion_mnist")):
        files.save_npz(root / f"data/raw/{dataset}.npz", **synthetic_mnist(kind=kind))
        files.write_json(root / f"data/raw/{dataset}.json", {"source": "synthetic test data"})
        sh("dvc", "commit", "--force", f"download@{dataset}", cwd=root)


def make_project(root: Path) -> str:
    """`prepare_project`, then `dvc repro` of the whole pipeline, committed. Returns what `dvc repro` printed."""
    prepare_project(root)
    out = sh("dvc", "repro", cwd=root).stdout
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "small run", cwd=root)
    return out


@pytest.fixture(scope="session")
def small_project(tmp_path_factory) -> tuple[Path, str]:
    """One small project for the whole test run, after `dvc repro`: copy it before changing it.
    Built once even when pytest-xdist runs tests in several processes: the first to get here builds it."""
    from filelock import FileLock

    # Under xdist each worker's base folder sits in one folder of this run; without it the base
    # folder is this run's (its parent holds every earlier run's).
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, printed = shared / "small-project", shared / "small-project.repro.txt"
    with FileLock(shared / "small-project.lock"):
        if not printed.exists():
            root.mkdir()
            printed.write_text(make_project(root))
    return root, printed.read_text()


@pytest.fixture
def project_copy(small_project, tmp_path) -> Path:
    """A private copy of the small project (git and DVC state included) that a test may break."""
    root = tmp_path / "project"
    shutil.copytree(small_project[0], root, symlinks=True)
    return root
