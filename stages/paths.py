"""Every path the pipeline reads or writes, defined once (dvc.yaml spells the same ones)."""

from pathlib import Path

PARAMS = Path("params.yaml")

RAW_MNIST = Path("data/raw/mnist.npz")
RAW_SOURCE = Path("data/raw/source.json")

DATASETS = Path("data/translated")


def dataset(name: str) -> Path:
    """`centred` (28x28 digits) or `translated` (digits on the canvas)."""
    return DATASETS / f"{name}.npz"


def model(experiment: str) -> Path:
    return Path("data/models") / f"{experiment}.keras"


def checkpoint_dir(experiment: str) -> Path:
    """Per-epoch backup for resuming an interrupted run; removed when training ends."""
    return Path("data/checkpoints") / experiment


def training_log(experiment: str) -> Path:
    return Path("reports/training") / experiment


def metrics(experiment: str) -> Path:
    return Path("reports/metrics") / f"{experiment}.json"


def invariance(experiment: str) -> Path:
    return Path("reports/metrics/invariance") / f"{experiment}.json"


def predictions(experiment: str) -> Path:
    return Path("reports/predictions") / f"{experiment}.csv"


# Written by the scripts in benchmarks/ (not pipeline stages), read by the report.
BENCHMARK = Path("reports/benchmark.json")
BENCHMARK_LEVERS = Path("reports/benchmark_levers.json")
BENCHMARK_PIPELINE = Path("reports/benchmark_pipeline.json")

REPORT_MD = Path("reports/report.md")
REPORT_HTML = Path("reports/index.html")
FIGURES = Path("reports/figures")


def figure(name: str) -> Path:
    return FIGURES / f"{name}.png"
