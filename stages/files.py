"""Atomic file writes: a stage that fails or is killed never leaves a partial output."""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stages.cli import StageError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it becomes `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends with the real one: Keras checks extensions like ".weights.h5".
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are ordinary files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_tree(folder: Path, parent: Path) -> None:
    """Delete `folder`, which must be an entry of `parent` itself once both are resolved: a name in
    params.yaml never makes this reach anything else."""
    folder, parent = Path(folder), Path(parent).resolve()
    if folder.resolve().parent != parent or folder.is_symlink():
        raise StageError(f"refusing to delete {folder}: it is not a folder inside {parent}")
    shutil.rmtree(folder, ignore_errors=True)


def write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    # Uncompressed: MNIST-sized arrays load several times faster, and DVC caches them anyway.
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}
