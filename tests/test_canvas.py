import numpy as np

from stages import canvas
from tests.conftest import random_digits as digits


def test_each_digit_sits_exactly_at_its_offset_and_nowhere_else():
    d = digits(300)
    offsets = canvas.draw_offsets(len(d), 12, np.random.default_rng(0))
    images = canvas.place(d, offsets, 40)
    assert images.shape == (300, 40, 40) and images.dtype == np.uint8
    for image, digit, (row, col) in zip(images, d, offsets):
        assert np.array_equal(image[row:row + 28, col:col + 28], digit)
        outside = image.copy()
        outside[row:row + 28, col:col + 28] = 0
        assert not outside.any()


def test_pixel_sums_are_preserved_and_extract_inverts_place():
    d = digits(200)
    offsets = canvas.draw_offsets(len(d), 12, np.random.default_rng(1))
    images = canvas.place(d, offsets, 40)
    assert np.array_equal(images.sum(axis=(1, 2), dtype=np.int64), d.sum(axis=(1, 2), dtype=np.int64))
    assert np.array_equal(canvas.extract(images, offsets), d)


def test_offsets_are_drawn_on_the_whole_range_of_each_axis():
    offsets = canvas.draw_offsets(5000, 12, np.random.default_rng(2))
    assert offsets.dtype == np.int16 and offsets.min() == 0 and offsets.max() == 12
    assert len(np.unique(offsets[:, 0])) == len(np.unique(offsets[:, 1])) == 13


def test_centre_offsets_put_the_digit_in_the_middle_of_the_canvas():
    images = canvas.place(digits(3), canvas.centre_offsets(3, 40), 40)
    assert np.array_equal(images[:, 6:34, 6:34], digits(3))
