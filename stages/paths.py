"""Every path the pipeline reads or writes, defined once (dvc.yaml spells the same ones), and
which stage makes it.

A path built from a name (an experiment's, a figure's) is checked to stay directly inside
its folder, whatever the name: params.py validates names, and this is the second line.
"""

import os
from pathlib import Path

from stages.cli import StageError

PARAMS = Path("params.yaml")
PARAMS_SCHEMA = Path("params.schema.json")  # made from stages/params.py's models: `make schema`

RAW = Path("data/raw")  # per dataset of stages/registry.py: <dataset>.npz and <dataset>.json

DATASET_DIR = Path("data/translated")
MODELS = Path("data/models")
CHECKPOINTS = Path("data/checkpoints")  # not a DVC output: it must outlive an interrupted stage
TRAINING_RUNS = Path("data/training")  # DVCLive's log as the train stage wrote it (cached, like the model)
TRAINING_LOGS = Path("reports/training")  # the same logs, committed: evaluate copies them
METRICS = Path("reports/metrics")
INVARIANCE = METRICS / "invariance"
SEEDS = METRICS / "seeds"
PREDICTIONS = Path("reports/predictions")
COMPARISONS = Path("reports/comparisons.json")


def inside(folder: Path, name: str) -> Path:
    """folder/name, refused unless it is an entry of `folder` itself (no '..', no subfolder)."""
    path = Path(os.path.normpath(folder / name))
    if not name or path.parent != Path(os.path.normpath(folder)):
        raise StageError(f"{name!r} is not a plain name: {folder / name} would leave {folder}/")
    return path


def raw(dataset: str) -> Path:
    """The download stage's arrays of one dataset."""
    return inside(RAW, f"{dataset}.npz")


def raw_record(dataset: str) -> Path:
    """Which source the download stage used, and the checksums it verified."""
    return inside(RAW, f"{dataset}.json")


def dataset_dir(of: str) -> Path:
    """The translate stage's files of one dataset (`mnist`)."""
    return inside(DATASET_DIR, of)


def dataset(of: str, name: str) -> Path:
    """Of one dataset: `centred` (28x28 images), `translated` (images on the canvas) or a protocol's file."""
    return inside(dataset_dir(of), f"{name}.npz")


def model(experiment: str) -> Path:
    return inside(MODELS, f"{experiment}.keras")


def checkpoint_dir(experiment: str) -> Path:
    """Per-epoch backup for resuming an interrupted run; removed when training ends."""
    return inside(CHECKPOINTS, experiment)


def training_run(experiment: str) -> Path:
    return inside(TRAINING_RUNS, experiment)


def training_log(experiment: str) -> Path:
    return inside(TRAINING_LOGS, experiment)


def metrics(experiment: str) -> Path:
    return inside(METRICS, f"{experiment}.json")


def invariance(experiment: str) -> Path:
    return inside(INVARIANCE, f"{experiment}.json")


def seeds(experiment: str) -> Path:
    return inside(SEEDS, f"{experiment}.json")


def predictions(experiment: str) -> Path:
    return inside(PREDICTIONS, f"{experiment}.csv")


REPORT_MD = Path("reports/report.md")
REPORT_HTML = Path("reports/index.html")
FIGURES = Path("reports/figures")


def figure_png(name: str) -> Path:
    return inside(FIGURES, f"{name}.png")


# The folders whose entries are outputs. A link to or above one of them (data/ on a bigger disk) is the
# user's choice and followed; below one, a link is never followed (files.check_no_links).
OUTPUT_FOLDERS = (RAW, DATASET_DIR, MODELS, CHECKPOINTS, TRAINING_RUNS, TRAINING_LOGS, INVARIANCE, SEEDS, METRICS,
                  PREDICTIONS, Path("reports/benchmarks"), Path("reports"), Path("live"))


def output_folder(path: Path) -> Path:
    """The folder of OUTPUT_FOLDERS that `path` is in, the deepest one; else the folder `path` is in."""
    path = Path(os.path.normpath(path))
    below = [folder for folder in OUTPUT_FOLDERS if path.is_relative_to(folder) and path != folder]
    return max(below, key=lambda folder: len(folder.parts)) if below else path.parent


# Which stage writes each file, or what is under each folder; per-experiment stages are named after the
# first part of the path below it (data/models/<experiment>.keras: train@<experiment>). The speed measurements
# and their page are the benchmarks pipeline's (benchmarks/paths.py names each file).
MADE_BY = ((RAW, "download@"), (DATASET_DIR, "translate@"), (MODELS, "train@"), (TRAINING_RUNS, "train@"),
           (INVARIANCE, "invariance@"), (SEEDS, "seeds@"), (METRICS, "evaluate@"), (PREDICTIONS, "evaluate@"),
           (TRAINING_LOGS, "evaluate@"), (COMPARISONS, "compare"), (Path("reports/benchmarks"), "benchmarks/dvc.yaml"),
           (Path("reports/speed.md"), "benchmarks/dvc.yaml"), (Path("reports/speed.html"), "benchmarks/dvc.yaml"),
           (Path("reports"), "report"))


def made_by(path: Path) -> str | None:
    path = Path(path)
    for made, stage in MADE_BY:
        if path == made and not stage.endswith("@"):
            return stage
        if path.is_relative_to(made) and path != made:
            below = path.relative_to(made).parts[0]
            return stage + below.split(".")[0] if stage.endswith("@") else stage
    return None


def remedy(path: Path) -> str:
    """What to do about a missing or broken input."""
    stage = made_by(path)
    if stage is None:
        return "make it again with `dvc repro`"
    restore = "git checkout --" if Path(path).is_relative_to("reports") else "dvc checkout"
    return f"run `dvc repro {stage}` to make it again, or `{restore} {path}` to restore the committed one"


# --- a training run while it goes on (stages/live.py) -----------------------------------------
# Not under data/: DVC reads no dvc.yaml that git ignores, and this folder holds one per run.
LIVE = Path("live")


def live(run: str) -> Path:
    """DVCLive's log of a run in progress (`<experiment>` or `<experiment>@seed-<n>`); removed when it ends."""
    return inside(LIVE, run)


# --- what `dvc metrics` and `dvc plots` compare across revisions (dvc.yaml's `metrics:` and `plots:`) --------
# A few headline numbers per experiment, each file's keys under the experiment's name, so that `dvc exp show`
# names a column `<experiment>.test_accuracy` rather than by its file's path.
HEADLINES = Path("reports/headlines")
INVARIANCE_HEADLINES = HEADLINES / "invariance"
PLOT_TABLES = Path("reports/plots")  # every experiment in one table per plot (stages/plots.py)
EPOCHS_TABLE = PLOT_TABLES / "epochs.csv"
TEST_ACCURACY_TABLE = PLOT_TABLES / "test_accuracy.csv"


def headline(experiment: str) -> Path:
    return inside(HEADLINES, f"{experiment}.json")


def invariance_headline(experiment: str) -> Path:
    return inside(INVARIANCE_HEADLINES, f"{experiment}.json")


MADE_BY = ((INVARIANCE_HEADLINES, "invariance@"), (HEADLINES, "evaluate@"), (PLOT_TABLES, "plots")) + MADE_BY
