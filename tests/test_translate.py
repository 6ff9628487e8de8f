import numpy as np
import pytest

from stages import translate
from stages.params import Placing
from tests.conftest import random_digits as digits


def splits(n=500):
    labels = np.arange(n, dtype=np.uint8) % 10
    return {"train": (digits(n, 1), labels), "val": (digits(n // 5, 2), labels[: n // 5]),
            "test": (digits(n, 3), labels)}


@pytest.mark.parametrize("offsets_range, top", [("full", 12), ("notebook", 11)])
def test_offsets_cover_the_whole_allowed_range(offsets_range, top):
    arrays = translate.translate(splits(2000), Placing(canvas=40, offsets=offsets_range), 0)
    offsets = arrays["offsets_train"]
    assert offsets.min() == 0 and offsets.max() == top
    # every one of the (top+1)^2 positions is used, on both axes independently
    assert len({tuple(o) for o in offsets}) == (top + 1) ** 2
    assert int(arrays["max_offset"]) == top


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    data = splits()
    a = translate.translate(data, Placing(canvas=40, offsets="full"), 7)
    b = translate.translate(data, Placing(canvas=40, offsets="full"), 7)
    c = translate.translate(data, Placing(canvas=40, offsets="full"), 8)
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    assert not np.array_equal(a["offsets_test"], c["offsets_test"])
    assert not np.array_equal(a["x_test"], c["x_test"])


def test_test_set_does_not_move_when_the_validation_size_changes():
    mnist = {"x_train": digits(600, 4), "y_train": np.zeros(600, np.uint8),
             "x_test": digits(100, 5), "y_test": np.zeros(100, np.uint8)}
    p = Placing(canvas=40, offsets="full")
    a = translate.translate(translate.split(mnist, 100), p, 3)
    b = translate.translate(translate.split(mnist, 50), p, 3)
    assert np.array_equal(a["x_test"], b["x_test"])


def test_validation_is_carved_from_the_start_of_training():
    mnist = {"x_train": digits(600, 4), "y_train": np.arange(600) % 10, "x_test": digits(10), "y_test": np.arange(10)}
    parts = translate.split(mnist, 100)
    assert np.array_equal(parts["val"][0], mnist["x_train"][:100])
    assert np.array_equal(parts["train"][0], mnist["x_train"][100:])
    with pytest.raises(Exception, match="validation_size"):
        translate.split(mnist, 600)


def test_canvas_of_28_is_the_identity():
    d = digits(50)
    arrays = translate.translate({"train": (d, np.zeros(50, np.uint8))},
                                 Placing(canvas=28, offsets="full"), 0)
    assert np.array_equal(arrays["x_train"], d)


def test_clutter_comes_from_other_digits_of_the_same_split_and_leaves_the_digit_whole():
    data = splits(300)
    plain = translate.translate(data, Placing(canvas=60, offsets="full"), 5, "plain60")
    cluttered = translate.translate(data, Placing(canvas=60, offsets="full", clutter=4, clutter_size=8), 5, "plain60")
    assert np.array_equal(plain["offsets_test"], cluttered["offsets_test"])  # the same stream: offsets first
    x, clean = cluttered["x_test"].astype(int), plain["x_test"].astype(int)
    assert (x >= clean).all()  # clutter only adds light: where it meets the digit, the brighter pixel stays
    extra = x - clean
    assert (extra > 0).any(axis=(1, 2)).mean() > 0.5  # most images got visible clutter (a piece may be blank)
    # every lit pixel of the clutter is a pixel value of some test digit's 8x8 piece: at most 4 pieces of 8x8
    assert ((extra > 0).sum(axis=(1, 2)) <= 4 * 64).all()
    assert cluttered["clutter"].tolist() == [4, 8] and "clutter" not in plain
    assert np.array_equal(cluttered["digits_train"], data["train"][0])  # clean digits, for placing them anew


def test_each_placing_draws_its_own_stream_and_translated_keeps_the_old_one():
    data = splits(300)
    placing = Placing(canvas=40, offsets="full")
    old = translate.translate(data, placing, 7)
    assert np.array_equal(translate.translate(data, placing, 7, "translated")["x_test"], old["x_test"])
    other = translate.translate(data, placing, 7, "another40")
    assert not np.array_equal(other["offsets_test"], old["offsets_test"])


def test_a_single_image_gets_no_clutter_from_itself():
    one = {"train": (digits(1, 9), np.zeros(1, np.uint8))}
    arrays = translate.translate(one, Placing(canvas=40, offsets="full", clutter=3, clutter_size=8), 0, "c")
    assert np.count_nonzero(arrays["x_train"]) == np.count_nonzero(one["train"][0])
