from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from stages import files, invariance, models, paths
from tests.conftest import write_datasets

REPO = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(0)


def test_every_digit_sits_exactly_at_each_offset_of_the_grid():
    canvas, n = 33, 4
    digits = rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8)  # no zero pixel: the box is the digit
    seen = []

    def predict(images):
        scores = np.zeros((len(images), 10))
        for i, image in enumerate(images[..., 0]):
            rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
            top, left = rows[0], cols[0]
            assert (rows[-1] - top, cols[-1] - left) == (27, 27)
            assert np.array_equal(np.rint(image[top:top + 28, left:left + 28] * 255), digits[i % n])
            seen.append((top, left))
            scores[i, (top + left) % 10] = 1  # "predicts" the sum of its offsets
        return scores

    correct = invariance.correct_at_offsets(predict, digits, np.full(n, 3), canvas, progress=lambda *_: None)
    rows, cols = np.indices((6, 6))
    assert correct.shape == (6, 6, n) and np.array_equal(correct.all(axis=2), (rows + cols) % 10 == 3)
    assert sorted(set(seen)) == [(r, c) for r in range(6) for c in range(6)] and len(seen) == 36 * n


def summed_pixels_model(canvas):
    """Translation invariant by construction: a linear map of the mean pixel value."""
    return keras.Sequential([keras.Input((canvas, canvas, 1)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(10)])


def test_an_invariant_model_draws_a_flat_grid_and_a_pixel_map_does_not():
    digits = rng.integers(0, 256, size=(200, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=200)
    keras.utils.set_random_seed(1)
    flat = invariance.correct_at_offsets(summed_pixels_model(32).predict, digits, labels, 32, lambda *_: None)
    assert np.all(flat == flat[0, 0])
    pixels = models.build("linear", (32, 32, 1))
    varied = invariance.correct_at_offsets(pixels.predict, digits, labels, 32, lambda *_: None).mean(axis=2)
    assert varied.max() > varied.min()


def test_summary_reads_the_grid():
    grid = np.arange(25, dtype=float).reshape(5, 5) / 25
    s = invariance.summary(grid)
    assert s == {"mean": grid.mean(), "min": 0.0, "centre": 12 / 25, "worst_corner": 0.0}
    grid[0, 0] = 0.9
    assert invariance.summary(grid)["worst_corner"] == 4 / 25


def test_noise_finds_the_offset_that_differs_from_the_centre_beyond_chance_and_not_the_others():
    correct = np.ones((3, 3, 200), bool)
    correct[:, :, 199] = False  # a digit no offset reads, but (0, 2): one gained, noise
    correct[0, 2, 199] = True
    correct[0, 0, :10] = False  # 10 digits lost, none gained: McNemar p = 2 / 2^10, times 8 offsets (Holm) = 0.016
    correct[2, 2, :2] = False  # 2 lost: p = 0.5, noise
    result = invariance.noise(correct)
    assert (result["offsets_worse"], result["offsets_better"]) == (1, 0)
    p = np.array(result["p_vs_centre"])
    assert p[0, 0] == pytest.approx(8 * 2 / 1024, abs=1e-6) and p[1, 1] == 1.0
    assert np.all(np.delete(p.ravel(), 0) > 0.05)
    assert result["measured_range"] == pytest.approx(11 / 200)
    assert result["sampling_range"] < result["sampling_range_95"] < result["measured_range"]
    assert result["centre_low"] < 199 / 200 < result["centre_high"]


def test_test_subset_is_seeded_sorted_and_bounded():
    labels = np.zeros(50)
    a, b = invariance.test_subset(labels, 20, 7), invariance.test_subset(labels, 20, 7)
    assert np.array_equal(a, b) and np.all(np.diff(a) > 0) and len(a) == 20
    assert not np.array_equal(a, invariance.test_subset(labels, 20, 8))
    with pytest.raises(invariance.params.ParamsError, match="test_digits = 51"):
        invariance.test_subset(labels, 51, 7)


def test_stage_writes_the_grid_with_its_declared_shape_and_a_summary_that_agrees(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["invariance"] |= {"experiments": ["linear_translated"], "test_digits": 30}
    paths.PARAMS.write_text(yaml.safe_dump(raw))
    (paths.DATASET_DIR / "mnist").mkdir(parents=True)
    write_datasets(paths.DATASET_DIR / "mnist", canvas=32)
    paths.model("x").parent.mkdir(parents=True)
    models.build("linear", (32, 32, 1)).save(paths.model("linear_translated"))

    invariance.main("linear_translated")

    result = files.read_json(paths.invariance("linear_translated"))
    grid = np.array(result["grid"])
    assert grid.shape == (5, 5) and result["canvas"] == 32 and result["test_digits"] == 30
    assert np.all((grid >= 0) & (grid <= 1)) and np.allclose(grid * 30, np.round(grid * 30), atol=1e-3)
    assert result["mean"] == pytest.approx(grid.mean(), abs=1e-4)
    assert result["min"] == pytest.approx(grid.min()) and result["centre"] == pytest.approx(grid[2, 2])
    assert result["worst_corner"] == pytest.approx(min(grid[0, 0], grid[0, 4], grid[4, 0], grid[4, 4]))
    assert result["offsets_worse"] + result["offsets_better"] <= 24 and np.array(result["p_vs_centre"]).shape == (5, 5)


def test_consistency_counts_every_two_offsets_once_by_their_distance():
    size, n = 4, 3
    predicted = np.zeros((size, size, n), dtype=np.int8)
    predicted[0, 0, 0] = 5  # digit 0 changes class at one corner offset only
    result = invariance.consistency(predicted)
    offsets = size * size
    assert result["pairs"] == offsets * (offsets - 1) // 2
    assert sum(d["pairs"] for d in result["by_distance"]) == result["pairs"]
    # digit 0 disagrees on the 15 pairs that include the corner; digits 1 and 2 always agree
    assert result["mean"] == pytest.approx((1 - 15 / 120 + 1 + 1) / 3)
    ring1 = next(d for d in result["by_distance"] if d["distance"] == 1)  # the corner has 3 neighbours at 1
    assert ring1["mean"] == pytest.approx((1 - 3 / ring1["pairs"] + 2) / 3)
    assert ring1["low"] <= ring1["mean"] <= ring1["high"]


def test_an_invariant_model_is_fully_consistent_and_a_pixel_map_is_not():
    digits = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    keras.utils.set_random_seed(1)
    flat = invariance.predicted_at_offsets(summed_pixels_model(32).predict, digits, 32, lambda *_: None)
    assert invariance.consistency(flat)["mean"] == 1.0
    pixels = invariance.predicted_at_offsets(models.build("linear", (32, 32, 1)).predict, digits, 32, lambda *_: None)
    assert invariance.consistency(pixels)["mean"] < 1.0
