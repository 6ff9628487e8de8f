"""A training run as it goes: every epoch logged where DVC's tools read it, and a line with the time left.

DVCLive's Keras callback writes each epoch to live/<run>/log/, beside a dvc.yaml of its own that declares
it, so `dvc exp show`, `dvc plots show` and VS Code's DVC extension show the run while it trains (in a
`dvc queue` worker's copy of the workspace too). The folder is scratch, like the checkpoints: the train
stage publishes the run's log with its model once training has succeeded (stages/train.py) and removes
the folder; a killed run leaves it, and the run's next start resumes it with the checkpoint (DVCLive's
`resume`). The published log is made anew from the run's checkpointed state, so it is the same whether
or not the run was interrupted; the live one names the validation split as DVCLive's callback does
(`eval`, the published one `val`). The dvc.yaml sits one folder above the log: in the log's own folder,
DVCLive 3.49 appends its entries again at every epoch instead of replacing them. Not under data/, which
git ignores: DVC reads no dvc.yaml that git ignores.
"""

import contextlib
import sys
import time

import keras

from stages import files, paths


class Progress(keras.callbacks.Callback):
    """One line per epoch: where the run is, its validation accuracy, and about how long the epochs left take
    at this run's pace (an upper bound: a stopping rule may end it sooner)."""

    def __init__(self, label: str, state: dict, epochs: int):
        super().__init__()
        self.label, self.state, self.epochs = label, state, epochs

    def on_train_begin(self, logs=None):
        self.started, self.first_epoch = time.perf_counter(), self.state["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        done, elapsed = epoch + 1, time.perf_counter() - self.started
        left = elapsed / (done - self.first_epoch) * (self.epochs - done)
        print(f"{self.label}: epoch {done}/{self.epochs}, validation accuracy {logs['val_accuracy']:.2%}, "
              f"{duration(elapsed)} so far, {duration(left)} left at most", flush=True)


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def callbacks(label: str, run: str, epochs: int, state: dict) -> list[keras.callbacks.Callback]:
    """The callbacks that show run `run` as it trains, given its state as resumed from its checkpoint: a
    run that starts afresh starts a fresh log, one that resumes continues its own."""
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    folder = paths.live(run)
    files.check_outputs(folder)  # DVCLive writes there: never through a link

    def start(resume: bool) -> Live:
        return Live(dir=str(folder / "log"), resume=resume, dvcyaml=str(folder / "dvc.yaml"), save_dvc_exp=False)

    try:
        live = start(resume=state["epoch"] > 0)
    except Exception as error:  # noqa: BLE001 (whatever DVCLive fails to read, the live view is only scratch)
        # DVCLive writes its files in place: a run killed while it wrote one leaves it cut short, and
        # DVCLive's resume fails on it. The live view starts again; the published log comes from the state.
        print(f"{label}: warning: the live log in {folder} could not be resumed ({type(error).__name__}); "
              "it starts again from this epoch", file=sys.stderr)
        files.remove_tree(folder, paths.LIVE)
        live = start(resume=False)
    # Step n is epoch n + 1, as in the published log; a kill after the checkpoint but before the log
    # was written leaves that one epoch out of the live view, not the published log (made from the state).
    live.step = state["epoch"]
    return [DVCLiveCallback(live=live), Progress(label, state, epochs)]


def clear(run: str) -> None:
    """Remove the run's live log: it has been published, or the run failed."""
    files.remove_tree(paths.live(run), paths.LIVE)
    with contextlib.suppress(OSError):  # the folder of all runs, once no other run is in it
        paths.LIVE.rmdir()
