"""Stage `train`: fit one experiment of params.yaml and save data/models/<experiment>.keras.

    python -m stages.train <experiment>

Each epoch is checkpointed under data/checkpoints/<experiment>/, so a killed run that is
started again continues from its last finished epoch, to the same weights. While it trains,
each epoch is logged to live/<experiment>/ for DVC's tools and a line tells the time left
(stages/live.py). The training log (DVCLive: per-epoch loss and accuracy, and a summary) goes
to data/training/<experiment>/ with the model, once training has succeeded; the evaluate stage
publishes it under reports/training/. A run that diverges or ends no better than guessing fails
and saves nothing. No file gets the run's duration: a rerun that trains the same weights writes
the same bytes (the speed page, `make benchmarks`, measures time).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from stages import cli, datasets, files, params, paths
from stages.cli import StageError

# A model that does not beat always answering the commonest digit by this much has learned nothing.
ABOVE_CHANCE = 0.01


def check_learned(exp: params.Experiment, state: dict, y_val: np.ndarray) -> None:
    """Refuse a run that diverged or whose validation accuracy ended at chance."""
    tried = f"after {state['steps']:,} steps with learning_rate {exp.learning_rate:g}"
    # Under `dvc repro`, DVC moved the last model aside before the stage ran; its cache keeps it.
    kept = f"nothing was saved (`dvc checkout train@{exp.name}` restores the last committed model)"
    if state["stopped_by"] == "diverged":
        raise StageError(f"training diverged (the loss became not finite or exploded) {tried}: {kept}; "
                         "try a smaller learning_rate")
    chance = np.bincount(y_val).max() / len(y_val)
    accuracy = state["history"][-1]["val/accuracy"] if state["history"] else 0.0
    if accuracy < chance + ABOVE_CHANCE:
        raise StageError(f"training learned nothing: validation accuracy {accuracy:.2%} {tried}, no better than "
                         f"always answering the commonest digit ({chance:.2%}): {kept}; try another learning_rate "
                         "or train longer")


def training_log(state: dict, summary: dict) -> dict[Path, bytes]:
    """DVCLive's files for the whole run, made at the end from the run's state in a scratch folder: a
    failed or interrupted run leaves the last good log as it was (DVCLive clears its folder when opened)."""
    from dvclive import Live

    with tempfile.TemporaryDirectory(prefix="dvclive-") as scratch:
        with Live(dir=scratch, save_dvc_exp=False, dvcyaml=False) as live:
            for record in state["history"]:
                for metric, value in record.items():
                    live.log_metric(metric, value)
                live.next_step()
            live.summary |= summary
        return files.read_folder(Path(scratch))


def main(experiment: str) -> None:
    exp = params.load().experiment(experiment)
    files.check_outputs(paths.model(exp.name), paths.training_run(exp.name), paths.checkpoint_dir(exp.name),
                        paths.live(exp.name))
    data = datasets.load(exp.dataset, exp.data)
    # Keras takes seconds to import: params and data are checked first, so that mistakes show at once.
    from stages import live, training

    checkpoints = training.Checkpoints(paths.CHECKPOINTS, exp.name,
                                       training.fingerprint(exp, paths.dataset(exp.dataset, exp.data)))
    model, state = training.fit(exp, data, checkpoints,
                                lambda state: live.callbacks(f"train: {exp.name}", exp.name, exp.epochs, state))
    try:
        check_learned(exp, state, data["y_val"])
    except StageError:
        checkpoints.clear()
        live.clear(exp.name)
        raise
    summary = {"epochs": state["epoch"], "steps": state["steps"], "stopped_by": state["stopped_by"],
               "best_epoch": state["best_epoch"], "params": model.count_params()}
    log, run = training_log(state, summary), paths.training_run(exp.name)
    # The model and its log, replaced together: a failure half-way leaves both as they were.
    files.write_all({paths.model(exp.name): lambda path: training.save_model(model, path),
                     **{run / name: content for name, content in log.items()}})
    files.remove_others(run, keep=log)
    checkpoints.clear()
    live.clear(exp.name)
    print(f"train: {exp.name}: {summary['epochs']} epochs, {summary['steps']} steps, {state['seconds']:.1f} s, "
          f"stopped by {summary['stopped_by']}; saved {paths.model(exp.name)}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
