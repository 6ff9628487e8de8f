"""The train stage's own decisions: when a run counts as failed, and the log it writes."""

import json

import numpy as np
import pytest

from stages import train, training
from stages.cli import StageError
from tests.conftest import experiment

LABELS = np.array([1] * 30 + [0, 2, 3, 4, 5, 6, 7, 8, 9] * 7 + [0] * 7)  # the commonest digit, 1, is 30 of 100


def state(val_accuracy, stopped_by="epochs"):
    return training.fresh_state("fp") | {"steps": 120, "stopped_by": stopped_by, "history": [
        {"train/loss": 0.5, "train/accuracy": 0.9, "val/loss": 0.6, "val/accuracy": val_accuracy}]}


def test_a_run_no_better_than_the_commonest_digit_learned_nothing():
    train.check_learned(experiment(), state(0.31 + 0.001), LABELS)  # just above chance: kept
    with pytest.raises(StageError, match=r"^training learned nothing: validation accuracy 30\.50% after 120 steps "
                                         r"with learning_rate 0\.01, no better than always answering the "
                                         r"commonest digit \(30\.00%\)"):
        train.check_learned(experiment(), state(0.305), LABELS)


def test_a_diverged_run_is_refused_whatever_its_accuracy():
    with pytest.raises(StageError, match=r"^training diverged .* nothing was saved \(`dvc checkout train@tiny`"):
        train.check_learned(experiment(), state(0.9, stopped_by="diverged"), LABELS)


def test_the_log_has_every_epoch_and_the_summary():
    history = [{"train/loss": 1.0 / k, "train/accuracy": 0.5, "val/loss": 2.0 / k, "val/accuracy": 0.4} for k in (1, 2)]
    log = train.training_log(training.fresh_state("fp") | {"history": history}, {"epochs": 2, "steps": 10})
    assert set(map(str, log)) == {"metrics.json", *(f"plots/metrics/{split}/{metric}.tsv" for split in ("train", "val")
                                                    for metric in ("loss", "accuracy"))}
    summary = json.loads(log[train.Path("metrics.json")])
    assert summary | {"epochs": 2, "steps": 10} == summary
    rows = [row.split("\t") for row in log[train.Path("plots/metrics/val/loss.tsv")].decode().splitlines()]
    assert rows == [["step", "loss"], ["0", "2.0"], ["1", "1.0"]]


def test_dvclive_clears_its_folder_when_opened(tmp_path):
    """Why the train stage writes its log only at the end, in a scratch folder."""
    from dvclive import Live

    with Live(dir=str(tmp_path), save_dvc_exp=False, dvcyaml=False) as live:
        live.log_metric("loss", 1.0)
    assert (tmp_path / "plots" / "metrics" / "loss.tsv").exists()
    with Live(dir=str(tmp_path), save_dvc_exp=False, dvcyaml=False):
        pass
    assert not (tmp_path / "plots" / "metrics" / "loss.tsv").exists()
