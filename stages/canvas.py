"""Where a 28x28 digit sits on a larger canvas: placing, cutting out and drawing offsets.

Shared by the translate stage (which makes the datasets), training (which may move the
digits every epoch) and the invariance stage (which puts them at every offset).
"""

import numpy as np

DIGIT = 28


def _by_offset(offsets: np.ndarray):
    """Yield (indices, row, col) for each distinct offset: one array copy per offset, not per image."""
    keys = offsets[:, 0].astype(np.int64) << 16 | offsets[:, 1]
    for key in np.unique(keys):
        yield np.flatnonzero(keys == key), int(key >> 16), int(key & 0xFFFF)


def place(digits: np.ndarray, offsets: np.ndarray, canvas: int) -> np.ndarray:
    """Put digit i at offsets[i] = (row, col) on an empty canvas x canvas image."""
    images = np.zeros((len(digits), canvas, canvas), dtype=digits.dtype)
    for index, row, col in _by_offset(offsets):
        images[index, row:row + DIGIT, col:col + DIGIT] = digits[index]
    return images


def extract(images: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The inverse of `place`: cut each 28x28 digit back out of its canvas."""
    digits = np.empty((len(images), DIGIT, DIGIT), dtype=images.dtype)
    for index, row, col in _by_offset(offsets):
        digits[index] = images[index, row:row + DIGIT, col:col + DIGIT]
    return digits


def draw_offsets(n: int, max_offset: int, rng: np.random.Generator) -> np.ndarray:
    """Offsets uniform on 0..max_offset inclusive, independently per axis."""
    return rng.integers(0, max_offset + 1, size=(n, 2), dtype=np.int16)


def centre_offsets(n: int, canvas: int) -> np.ndarray:
    """Every digit at the middle of the canvas."""
    return np.full((n, 2), (canvas - DIGIT) // 2, dtype=np.int16)


def add_clutter(images: np.ndarray, digits: np.ndarray, pieces: int, size: int, rng: np.random.Generator) -> None:
    """Add to each canvas, in place, `pieces` size x size pieces, each cut at a random spot of another digit
    of `digits` (never its own) and laid at a random spot of the canvas; where pixels overlap, the brighter one
    stays. As in Mnih et al. 2014 (RAM), section 4.1: "random 8 by 8 subpatches from other random MNIST digits"."""
    n, canvas = len(images), images.shape[1]
    if n < 2 or pieces == 0:
        return
    span = np.arange(size)
    for _ in range(pieces):
        source = (np.arange(n) + rng.integers(1, n, size=n)) % n  # any digit but the image's own
        cut = rng.integers(0, DIGIT - size + 1, size=(n, 2))
        at = rng.integers(0, canvas - size + 1, size=(n, 2))
        rows, cols = (cut[:, :1] + span)[:, :, None], (cut[:, 1:] + span)[:, None, :]
        piece = digits[source[:, None, None], rows, cols]
        rows, cols = (at[:, :1] + span)[:, :, None], (at[:, 1:] + span)[:, None, :]
        index = np.arange(n)[:, None, None]
        images[index, rows, cols] = np.maximum(images[index, rows, cols], piece)
