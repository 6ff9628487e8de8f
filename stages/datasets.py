"""The translate stage's dataset files, and images as a model takes them."""

import numpy as np

from stages import files, paths

SPLITS = ("train", "val", "test")
ARRAYS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y", "offsets")) + ("max_offset",)


def as_input(images: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w) -> float32 (n, h, w, 1) in [0, 1]."""
    x = images.astype(np.float32)[..., None]
    x /= 255.0  # in place: 10x faster than a second array
    return x


def load(name: str, only: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """One dataset file of the translate stage, `centred` or `translated` (`only` some of its arrays)."""
    return files.load_npz(paths.dataset(name), required=ARRAYS, only=only)
