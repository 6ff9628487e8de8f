import matplotlib.axes
import matplotlib.text
import numpy as np
import pytest
from matplotlib.figure import Figure

from stages import figures

rng = np.random.default_rng(0)
DIGITS = rng.integers(0, 256, size=(20, 32, 32), dtype=np.uint8)
LABELS = np.arange(20) % 10


def visible_axes(fig):
    return [ax for ax in fig.findobj(matplotlib.axes.Axes) if ax.get_visible()]


def images(fig):
    return [image for ax in visible_axes(fig) for image in ax.get_images()]


def check_readable(fig: Figure):
    """A title, every visible panel titled or labelled, no text under 9 pt, fits a 900 px column."""
    assert isinstance(fig, Figure)
    assert fig.get_suptitle()
    for ax in visible_axes(fig):
        assert ax.get_title() or ax.get_xlabel() or ax.get_ylabel(), ax
    for text in fig.findobj(matplotlib.text.Text):
        if text.get_visible() and text.get_text():
            assert text.get_fontsize() >= 9, text.get_text()
    assert fig.get_size_inches()[0] * figures.DPI <= 900


CASES = {
    "examples": lambda: figures.examples(DIGITS, LABELS, "Examples", offsets=np.zeros((9, 2), int), digit_size=28),
    "weight_maps": lambda: figures.weight_maps(rng.normal(size=(32 * 32, 10)), (32, 32), "Weights"),
    "conv_kernels": lambda: figures.conv_kernels(rng.normal(size=(5, 5, 1, 32)), "Kernels"),
    "feature_maps": lambda: figures.feature_maps(DIGITS[0], rng.random((32, 32, 32)), "Maps", "input"),
    "training_curves": lambda: figures.training_curves(
        {"loss": {"train": ([1, 2, 3], [1.0, 0.5, 0.3]), "val": ([1, 2, 3], [1.1, 0.6, 0.4])},
         "accuracy": {"train": ([1, 2, 3], [0.7, 0.8, 0.9]), "val": ([1, 2, 3], [0.6, 0.8, 0.85])}}, "Curves"),
    "confusion": lambda: figures.confusion(LABELS, (LABELS + (LABELS == 3)) % 10, "Confusion"),
    "confident_errors": lambda: figures.confident_errors(DIGITS, LABELS, (LABELS + 1) % 10, rng.random(20), "Errors"),
    "consistency_by_distance": lambda: figures.consistency_by_distance(
        {"moved": {"CNN": [{"distance": d, "mean": 0.9, "low": 0.85, "high": 0.95} for d in (1, 2, 3)]}},
        "Consistency"),
}


@pytest.mark.parametrize("name", CASES)
def test_every_figure_is_titled_labelled_and_readable(name):
    check_readable(CASES[name]())


def test_weight_maps_diverge_around_zero_on_one_shared_scale_one_map_per_digit():
    kernel = rng.normal(size=(6 * 4, 10)) * 0.1
    kernel[1 * 4 + 2, 7] = -3.0  # pixel (row 1, col 2) of digit 7: the largest weight, negative
    fig = figures.weight_maps(kernel, (6, 4), "Weights")
    maps = images(fig)
    assert len(maps) == 10
    limit = np.percentile(np.abs(kernel), 99)  # one outlier does not set the scale for all
    for image in maps:
        low, high = image.get_clim()
        assert -low == high == pytest.approx(limit)
        assert image.get_cmap().name == figures.WEIGHTS == "RdBu_r"
    assert maps[7].get_array()[1, 2] == -3.0
    assert any(ax.get_ylabel() for ax in fig.axes if not ax.get_images())  # the colour bar says what it shows


def test_conv_kernels_are_diverging_and_symmetric_and_feature_maps_start_at_zero():
    kernel = rng.normal(size=(5, 5, 1, 32))
    kernels = images(figures.conv_kernels(kernel, "Kernels"))
    assert len(kernels) == 32
    assert all(-k.get_clim()[0] == k.get_clim()[1] == np.abs(kernel).max() for k in kernels)
    np.testing.assert_array_equal(kernels[4].get_array(), kernel[:, :, 0, 4])

    maps = rng.random((8, 8, 32))
    shown = images(figures.feature_maps(DIGITS[0], maps, "Maps", "input"))
    assert len(shown) == 33  # the digit and 32 maps
    assert shown[0].get_cmap().name == figures.INK
    assert all(m.get_clim() == (0, maps.max()) and m.get_cmap().name == figures.ACTIVATION for m in shown[1:])


def test_confusion_counts_true_rows_against_predicted_columns():
    counts = figures.confusion_matrix(np.array([1, 1, 2, 8]), np.array([1, 7, 2, 3]))
    assert counts.sum() == 4 and counts[1, 1] == counts[1, 7] == counts[2, 2] == counts[8, 3] == 1


def test_most_confident_errors_come_first_and_ties_keep_test_order():
    actual = np.array([0, 1, 2, 3, 4, 5])
    predicted = np.array([0, 9, 9, 9, 4, 9])
    confidence = np.array([0.99, 0.6, 0.9, 0.6, 0.99, 0.95])
    assert figures.most_confident_errors(actual, predicted, confidence, 10).tolist() == [5, 2, 1, 3]
    assert figures.most_confident_errors(actual, predicted, confidence, 2).tolist() == [5, 2]


def test_confident_errors_without_any_error_still_says_so():
    fig = figures.confident_errors(DIGITS, LABELS, LABELS, np.ones(20), "Errors")
    check_readable(fig)
    assert "no test image" in visible_axes(fig)[0].get_title()


def test_save_writes_the_same_png_bytes_twice_without_the_software_stamp(tmp_path):
    for name in ("a", "b"):
        figures.save(CASES["confusion"](), tmp_path / "deep" / f"{name}.png")
    a, b = (tmp_path / "deep" / "a.png").read_bytes(), (tmp_path / "deep" / "b.png").read_bytes()
    assert a.startswith(b"\x89PNG\r\n\x1a\n") and len(a) > 1000
    assert a == b
    assert b"Software" not in a and b"atplotlib" not in a
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["a.png", "b.png"]  # no temporary left


def test_accuracy_by_distance_averages_square_rings_around_the_centre():
    grid = np.zeros((5, 5))
    grid[1:4, 1:4] = 0.5
    grid[2, 2] = 1.0
    distances, accuracy = figures.by_distance(grid)
    assert distances.tolist() == [0, 1, 2] and accuracy.tolist() == [1.0, 0.5, 0.0]


def test_invariance_maps_share_one_scale_from_zero_to_one():
    grids = {"translated": {"a": rng.random((4, 4)), "b": rng.random((4, 4)) * 0.1}, "centre": {"b": np.ones((4, 4))}}
    shown = images(figures.invariance_maps(grids, "Offsets"))
    assert len(shown) == 3 and all(image.get_clim() == (0, 1) for image in shown)


def test_invariance_maps_keep_six_titles_apart_and_name_the_item():
    names = ["linear model", "MLP", "CNN", "global-pooling CNN", "batch-normalised CNN", "shift-invariant CNN"]
    fig = figures.invariance_maps({"centre": {name: rng.random((13, 13)) for name in names}}, "Offsets", "garment")
    check_readable(fig)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    titles = [ax.title.get_window_extent(renderer) for ax in visible_axes(fig) if ax.get_title()]
    assert len(titles) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(titles) for b in titles[i + 1:])
    assert any("garment at that offset" in ax.get_ylabel() for ax in visible_axes(fig))
