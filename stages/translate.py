"""Stage `translate`: split one dataset (MNIST) into train/validation/test and place every image on a canvas.

Writes, in data/translated/<dataset>/, centred.npz (the 28x28 images), translated.npz (each image at a
random offset on an empty canvas x canvas image) and <protocol>.npz for each of translate.protocols
(another canvas, and clutter: pieces of other images of the same split). Each holds, per split,
`x_<split>` uint8 images, `y_<split>` uint8 labels and `offsets_<split>` int16 (row, col),
and `max_offset`, the largest offset the random placement may draw; a cluttered file also holds
`clutter` = (pieces per image, their side) and the clean `digits_train`, so that training can place
the digits and their clutter afresh each epoch.
"""

import sys
import time
import zlib

import numpy as np

from stages import cli, datasets, files, params, paths, registry
from stages.canvas import add_clutter, draw_offsets, place

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


def stream(seed: int, split: int, placing: str) -> np.random.Generator:
    """Each split of each placing its own random stream: the test set does not move when validation_size does,
    nor one protocol's when another is added. `translated` keeps the stream it always had."""
    key = [seed, split] if placing == "translated" else [seed, split, zlib.crc32(placing.encode())]
    return np.random.default_rng(key)


def translate(splits: dict, placing: params.Placing, seed: int, name: str = "translated") -> dict[str, np.ndarray]:
    """The splits' images placed as `placing` says (clutter cut from the same split's images)."""
    arrays = {}
    for index, (split_name, (x, y)) in enumerate(splits.items()):
        rng = stream(seed, index, name)
        offsets = draw_offsets(len(x), placing.max_offset, rng)
        images = place(x, offsets, placing.canvas)
        add_clutter(images, x, placing.clutter, placing.clutter_size, rng)
        arrays |= {f"x_{split_name}": images, f"y_{split_name}": y, f"offsets_{split_name}": offsets}
    # Clutter may fall on the digit: training that places the digits anew takes them from `digits_train`.
    clutter = {"clutter": np.array([placing.clutter, placing.clutter_size]),
               "digits_train": splits["train"][0]} if placing.clutter else {}
    return arrays | {"max_offset": np.array(placing.max_offset)} | clutter


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
    folder = paths.dataset_dir(dataset)
    files.check_outputs(folder)
    images = datasets.checked(raw, files.load_npz(raw, required=RAW_ARRAYS, only=RAW_ARRAYS), datasets.DIGIT)
    splits = split(images, p.data.validation_size)
    outputs = {paths.dataset(dataset, "centred"): centred(splits)}
    for name, placing in p.translate.placings.items():
        outputs[paths.dataset(dataset, name)] = translate(splits, placing, p.translate.seed, name)
    elapsed = time.perf_counter() - start
    # Every file or none: a failure half-way never leaves files from two different runs.
    files.save_npzs(outputs)
    files.remove_others(folder, keep=[path.relative_to(folder) for path in outputs])  # a protocol taken out
    sizes = ", ".join(f"{name} {len(x)}" for name, (x, _) in splits.items())
    placed = "; ".join(f"{name}: {placing.canvas}x{placing.canvas}, offsets 0..{placing.max_offset}"
                       + (f", {placing.clutter} pieces of {placing.clutter_size}x{placing.clutter_size} clutter"
                          if placing.clutter else "") for name, placing in p.translate.placings.items())
    print(f"translate: {sizes} {registry.entry(dataset).item}s placed ({placed}) in {elapsed:.2f} s")


if __name__ == "__main__":
    sys.exit(cli.run(main))
