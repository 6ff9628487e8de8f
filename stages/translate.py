"""Stage `translate`: split MNIST into train/validation/test and place every digit on a canvas.

Writes data/translated/centred.npz (the 28x28 digits) and data/translated/translated.npz
(each digit at a random offset on an empty canvas x canvas image). Both hold, per split,
`x_<split>` uint8 images, `y_<split>` uint8 labels and `offsets_<split>` int16 (row, col),
and `max_offset`, the largest offset the random placement may draw.
"""

import sys
import time

import numpy as np

from stages import cli, files, params, paths

DIGIT = 28
SPLITS = ("train", "val", "test")


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


def split(mnist: dict[str, np.ndarray], validation_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validation is the first `validation_size` training digits, as in TensorFlow's old reader."""
    n_train = len(mnist["x_train"])
    if validation_size >= n_train:
        raise params.ParamsError(f"data.validation_size = {validation_size}: must be < {n_train}, the training set size")
    x, y = mnist["x_train"], mnist["y_train"]
    return {
        "train": (x[validation_size:], y[validation_size:]),
        "val": (x[:validation_size], y[:validation_size]),
        "test": (mnist["x_test"], mnist["y_test"]),
    }


def translate(splits: dict, translate_params: params.TranslateParams) -> dict[str, np.ndarray]:
    """Each split gets its own random stream, so the test set does not move when validation_size does."""
    arrays = {}
    for index, (name, (x, y)) in enumerate(splits.items()):
        rng = np.random.default_rng([translate_params.seed, index])
        offsets = draw_offsets(len(x), translate_params.max_offset, rng)
        arrays |= {f"x_{name}": place(x, offsets, translate_params.canvas), f"y_{name}": y, f"offsets_{name}": offsets}
    return arrays | {"max_offset": np.array(translate_params.max_offset)}


def centred(splits: dict) -> dict[str, np.ndarray]:
    arrays = {}
    for name, (x, y) in splits.items():
        arrays |= {f"x_{name}": x, f"y_{name}": y, f"offsets_{name}": np.zeros((len(x), 2), dtype=np.int16)}
    return arrays | {"max_offset": np.array(0)}


def main() -> None:
    p = params.load()
    start = time.perf_counter()
    splits = split(files.load_npz(paths.RAW_MNIST), p.data.validation_size)
    translated = translate(splits, p.translate)
    elapsed = time.perf_counter() - start
    files.save_npz(paths.dataset("centred"), **centred(splits))
    files.save_npz(paths.dataset("translated"), **translated)
    sizes = ", ".join(f"{name} {len(x)}" for name, (x, _) in splits.items())
    print(f"translate: {sizes} digits on a {p.translate.canvas}x{p.translate.canvas} canvas, "
          f"offsets 0..{p.translate.max_offset}, in {elapsed:.2f} s")


if __name__ == "__main__":
    sys.exit(cli.run(main))
