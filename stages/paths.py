"""Every path the pipeline reads or writes, defined once (dvc.yaml spells the same ones).

A path built from a name (an experiment's, a figure's) is checked to stay directly inside
its folder, whatever the name: params.py validates names, and this is the second line.
"""

import os
from pathlib import Path

from stages.cli import StageError

PARAMS = Path("params.yaml")

RAW_MNIST = Path("data/raw/mnist.npz")
RAW_SOURCE = Path("data/raw/source.json")

DATASETS = Path("data/translated")


def inside(folder: Path, name: str) -> Path:
    """folder/name, refused unless it is an entry of `folder` itself (no '..', no subfolder)."""
    path = Path(os.path.normpath(folder / name))
    if not name or path.parent != Path(os.path.normpath(folder)):
        raise StageError(f"{name!r} is not a plain name: {folder / name} would leave {folder}/")
    return path


def dataset(name: str) -> Path:
    """`centred` (28x28 digits) or `translated` (digits on the canvas)."""
    return inside(DATASETS, f"{name}.npz")


CHECKPOINTS = Path("data/checkpoints")


def model(experiment: str) -> Path:
    return inside(Path("data/models"), f"{experiment}.keras")


def checkpoint_dir(experiment: str) -> Path:
    """Per-epoch backup for resuming an interrupted run; removed when training ends."""
    return inside(CHECKPOINTS, experiment)


def training_log(experiment: str) -> Path:
    return inside(Path("reports/training"), experiment)


def metrics(experiment: str) -> Path:
    return inside(Path("reports/metrics"), f"{experiment}.json")


def invariance(experiment: str) -> Path:
    return inside(Path("reports/metrics/invariance"), f"{experiment}.json")


def predictions(experiment: str) -> Path:
    return inside(Path("reports/predictions"), f"{experiment}.csv")


# Written by the scripts in benchmarks/ (not pipeline stages), read by the report.
BENCHMARK = Path("reports/benchmarks/cnn_speed.json")
BENCHMARK_LEVERS = Path("reports/benchmarks/cnn_levers.json")
BENCHMARK_PIPELINE = Path("reports/benchmarks/pipeline_time.json")

REPORT_MD = Path("reports/report.md")
REPORT_HTML = Path("reports/index.html")
FIGURES = Path("reports/figures")


def figure(name: str) -> Path:
    return inside(FIGURES, f"{name}.png")
