import numpy as np
import pytest

from stages import translate
from stages.params import TranslateParams
from tests.conftest import random_digits as digits


def splits(n=500):
    labels = np.arange(n, dtype=np.uint8) % 10
    return {"train": (digits(n, 1), labels), "val": (digits(n // 5, 2), labels[: n // 5]),
            "test": (digits(n, 3), labels)}


@pytest.mark.parametrize("offsets_range, top", [("full", 12), ("notebook", 11)])
def test_offsets_cover_the_whole_allowed_range(offsets_range, top):
    p = TranslateParams(canvas=40, offsets=offsets_range, seed=0)
    arrays = translate.translate(splits(2000), p)
    offsets = arrays["offsets_train"]
    assert offsets.min() == 0 and offsets.max() == top
    # every one of the (top+1)^2 positions is used, on both axes independently
    assert len({tuple(o) for o in offsets}) == (top + 1) ** 2
    assert int(arrays["max_offset"]) == top


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    data = splits()
    a = translate.translate(data, TranslateParams(canvas=40, offsets="full", seed=7))
    b = translate.translate(data, TranslateParams(canvas=40, offsets="full", seed=7))
    c = translate.translate(data, TranslateParams(canvas=40, offsets="full", seed=8))
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    assert not np.array_equal(a["offsets_test"], c["offsets_test"])
    assert not np.array_equal(a["x_test"], c["x_test"])


def test_test_set_does_not_move_when_the_validation_size_changes():
    mnist = {"x_train": digits(600, 4), "y_train": np.zeros(600, np.uint8),
             "x_test": digits(100, 5), "y_test": np.zeros(100, np.uint8)}
    p = TranslateParams(canvas=40, offsets="full", seed=3)
    a = translate.translate(translate.split(mnist, 100), p)
    b = translate.translate(translate.split(mnist, 50), p)
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
                                 TranslateParams(canvas=28, offsets="full", seed=0))
    assert np.array_equal(arrays["x_train"], d)
