"""The seed study: its summary by hand, and the stage on tiny data."""

import json
import math

import numpy as np
import pytest
import yaml

from stages import files, paths, seeds
from tests.conftest import REPO, metrics_record, write_datasets


def test_summary_separates_the_spread_between_seeds_from_one_runs_test_set_noise():
    result = seeds.summary([1, 2, 3], [0.90, 0.92, 0.94], ["epochs"] * 3, 10_000)
    assert result["mean"] == pytest.approx(0.92) and result["sd"] == pytest.approx(0.02)  # sample sd, n - 1
    assert (result["min"], result["max"], result["runs"]) == (0.90, 0.94, 3)
    assert result["test_sd"] == pytest.approx(math.sqrt(0.92 * 0.08 / 10_000))
    assert seeds.summary([7], [0.5], ["epochs"], 100)["sd"] is None  # one run: no spread to measure


@pytest.fixture
def project(tmp_path, monkeypatch):
    """params.yaml with one tiny experiment run three times, its data, and its own run's metrics."""
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny = raw["defaults"] | {"data": "translated", "placement": "fixed", "model": "linear", "epochs": 2,
                              "batch_size": 50, "learning_rate": 0.01, "warmup_epochs": 0, "seed": 4}
    raw["experiments"], raw["seeds"] = {"tiny": tiny}, {"tiny": 3}
    raw["invariance"]["experiments"] = ["tiny"]
    paths.PARAMS.write_text(yaml.safe_dump(raw))
    (paths.DATASET_DIR / "mnist").mkdir(parents=True)
    write_datasets(paths.DATASET_DIR / "mnist", canvas=32)
    files.write_json(paths.metrics("tiny"), metrics_record(0.25))
    return tmp_path


def test_the_stage_trains_the_next_seeds_scores_each_and_leaves_no_checkpoint(project):
    seeds.main("tiny")
    result = json.loads(paths.seeds("tiny").read_text())
    assert result["seeds"] == [4, 5, 6] and result["runs"] == 3 and result["stopped_by"] == ["epochs"] * 3
    assert result["test_accuracy"][0] == 0.25  # the train stage's own run, as evaluate scored it
    test_digits = len(np.load(paths.dataset("mnist", "translated"))["y_test"])
    for accuracy in result["test_accuracy"][1:]:  # whole digits of the 200-digit test set
        assert 0 <= accuracy <= 1 and accuracy * test_digits == pytest.approx(round(accuracy * test_digits))
    assert result["test_accuracy"][1] != result["test_accuracy"][2]  # other seeds, other runs
    assert result["mean"] == pytest.approx(np.mean(result["test_accuracy"])) and result["test_digits"] == test_digits
    assert not any(paths.CHECKPOINTS.glob("*"))

    first = paths.seeds("tiny").read_bytes()
    seeds.main("tiny")
    assert paths.seeds("tiny").read_bytes() == first  # the same seeds train the same weights


def test_one_run_trains_nothing(project):
    raw = yaml.safe_load(paths.PARAMS.read_text())
    raw["seeds"]["tiny"] = 1
    paths.PARAMS.write_text(yaml.safe_dump(raw))
    seeds.main("tiny")
    result = json.loads(paths.seeds("tiny").read_text())
    assert result["test_accuracy"] == [0.25] and result["sd"] is None and not paths.CHECKPOINTS.exists()
