"""The translate stage's dataset files, and images as a model takes them.

Every array is checked when read (dtype, shape, value range, matching lengths): a file that
loads but holds the wrong data is one line naming it, never a model trained on it.
"""

from pathlib import Path

import numpy as np

from stages import files, paths

SPLITS = ("train", "val", "test")
ARRAYS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y", "offsets")) + ("max_offset",)
CLASSES = 10  # labels are 0..9
DIGIT = 28  # MNIST's images are 28x28


def as_input(images: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w) -> float32 (n, h, w, 1) in [0, 1]."""
    x = images.astype(np.float32)[..., None]
    x /= 255.0  # in place: 10x faster than a second array
    return x


def problem(arrays: dict[str, np.ndarray], digit_size: int | None = None) -> str | None:
    """What is wrong with images, labels and offsets named x_<split>, y_<split>, offsets_<split> (and
    max_offset; in a cluttered file clutter and digits_train), in a few words; None when they are as the
    pipeline writes them."""
    shapes = set()
    for name, x in arrays.items():
        if not name.startswith("x_"):
            continue
        if x.dtype != np.uint8 or x.ndim != 3:
            return f"{name} is {x.dtype} of shape {x.shape}, expected uint8 images (n, height, width)"
        if x.shape[1] != x.shape[2] or x.shape[1] < DIGIT or (digit_size and x.shape[1] != digit_size):
            return f"{name} has images of {x.shape[1]}x{x.shape[2]}, expected {digit_size or 'square, at least 28'}"
        shapes.add(x.shape[1:])
    if len(shapes) > 1:
        return f"the splits' images differ in size: {', '.join(f'{h}x{w}' for h, w in sorted(shapes))}"
    for name, y in arrays.items():
        if not name.startswith("y_"):
            continue
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            return f"{name} is {y.dtype} of shape {y.shape}, expected integer labels (n,)"
        if len(y) and (y.min() < 0 or y.max() >= CLASSES):
            return f"{name} has labels from {y.min()} to {y.max()}, expected 0 to {CLASSES - 1}"
        images = arrays.get("x_" + name[2:])
        if images is not None and len(images) != len(y):
            return f"{len(images)} images in x_{name[2:]} but {len(y)} labels in {name}"
    clutter = arrays.get("clutter")  # only in a cluttered file: (pieces per image, their side)
    if clutter is not None and (clutter.shape != (2,) or not np.issubdtype(clutter.dtype, np.integer)
                                or clutter[0] < 0 or not 1 <= clutter[1] <= DIGIT):
        return f"clutter is {clutter.dtype} {clutter.tolist()}, expected (pieces, side) with a side of 1 to {DIGIT}"
    digits, labels = arrays.get("digits_train"), arrays.get("y_train")
    if digits is not None and (digits.dtype != np.uint8 or digits.shape[1:] != (DIGIT, DIGIT)
                               or (labels is not None and len(digits) != len(labels))):
        return f"digits_train is {digits.dtype} of shape {digits.shape}, expected uint8 (n, 28, 28), one per label"
    max_offset = arrays.get("max_offset")
    if max_offset is not None and (max_offset.shape != () or not np.issubdtype(max_offset.dtype, np.integer)):
        return f"max_offset is {max_offset.dtype} of shape {max_offset.shape}, expected one integer"
    for name, offsets in arrays.items():
        if not name.startswith("offsets_"):
            continue
        split = name.removeprefix("offsets_")
        n = len(arrays.get("y_" + split, offsets))
        if not np.issubdtype(offsets.dtype, np.integer) or offsets.shape != (n, 2):
            return f"{name} is {offsets.dtype} of shape {offsets.shape}, expected integers of shape ({n}, 2)"
        images = arrays.get("x_" + split)
        top = (images.shape[1] - DIGIT if images is not None else None) if max_offset is None else int(max_offset)
        if len(offsets) and top is not None and (offsets.min() < 0 or offsets.max() > top):
            return f"{name} runs from {offsets.min()} to {offsets.max()}, expected 0 to {top}"
    if max_offset is not None and shapes and not 0 <= int(max_offset) <= next(iter(shapes))[0] - DIGIT:
        return f"max_offset = {int(max_offset)} does not fit a digit on a {next(iter(shapes))[0]}-pixel canvas"
    return None


def checked(path: Path, arrays: dict[str, np.ndarray], digit_size: int | None = None) -> dict[str, np.ndarray]:
    """`arrays` as read from `path`, refused in one line if `problem` finds anything wrong."""
    found = problem(arrays, digit_size)
    if found:
        raise files.invalid(path, found)
    return arrays


def load(of: str, name: str, only: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """One file of the translate stage for dataset `of`, `centred` or `translated` (`only` some of its arrays)."""
    path = paths.dataset(of, name)
    return checked(path, files.load_npz(path, required=ARRAYS, only=only), DIGIT if name == "centred" else None)
