"""Stage `translate`: split one dataset (MNIST) into train/validation/test and place every image on a canvas.

Writes data/translated/<dataset>/centred.npz (the 28x28 images) and data/translated/<dataset>/translated.npz
(each image at a random offset on an empty canvas x canvas image). Both hold, per split,
`x_<split>` uint8 images, `y_<split>` uint8 labels and `offsets_<split>` int16 (row, col),
and `max_offset`, the largest offset the random placement may draw.
"""

import sys
import time

import numpy as np

from stages import cli, datasets, files, params, paths, registry
from stages.canvas import draw_offsets, place

RAW_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def split(mnist: dict[str, np.ndarray], validation_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validation is the first `validation_size` training digits, as in TensorFlow's old reader."""
    n_train = len(mnist["x_train"])
    if validation_size >= n_train:
        raise params.ParamsError(f"data.validation_size = {validation_size}: must be < {n_train}, "
                                 "the training set size")
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


def main(dataset: str) -> None:
    p = params.load()
    registry.entry(dataset)
    start = time.perf_counter()
    raw = paths.raw(dataset)
    centred_file, translated_file = paths.dataset(dataset, "centred"), paths.dataset(dataset, "translated")
    files.check_outputs(centred_file, translated_file)
    images = datasets.checked(raw, files.load_npz(raw, required=RAW_ARRAYS, only=RAW_ARRAYS), datasets.DIGIT)
    splits = split(images, p.data.validation_size)
    translated = translate(splits, p.translate)
    elapsed = time.perf_counter() - start
    # Both files or neither: a failure half-way never leaves a pair from two different runs.
    files.save_npzs({centred_file: centred(splits), translated_file: translated})
    sizes = ", ".join(f"{name} {len(x)}" for name, (x, _) in splits.items())
    print(f"translate: {sizes} digits on a {p.translate.canvas}x{p.translate.canvas} canvas, "
          f"offsets 0..{p.translate.max_offset}, in {elapsed:.2f} s")


if __name__ == "__main__":
    sys.exit(cli.run(main))
