"""reports/predictions/<experiment>.csv: one row per test image, written by evaluate, read by
compare and report (and drawn by `dvc plots`' confusion template)."""

from pathlib import Path

import numpy as np

from stages import files

HEADER = "index,actual,predicted,confidence"


def to_csv(probabilities: np.ndarray, labels: np.ndarray) -> str:
    rows = [HEADER]
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    rows += [f"{i},{a},{p},{c:.4f}" for i, (a, p, c) in enumerate(zip(labels, predicted, confidence))]
    return "\n".join(rows) + "\n"


def read(path: Path, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """actual, predicted, confidence; `labels`, when given, must be the actual column."""
    with files.reading(path, ValueError, IndexError, UnicodeDecodeError):
        with open(path, encoding="utf-8") as f:
            header = f.readline().strip()
        if header != HEADER:
            raise ValueError(f"header '{header}', expected '{HEADER}'")
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        actual, predicted, confidence = table[:, 1].astype(np.int64), table[:, 2].astype(np.int64), table[:, 3]
        if labels is not None and (len(actual) != len(labels) or not np.array_equal(actual, labels)):
            raise ValueError("its labels are not the test set's")
    return {"actual": actual, "predicted": predicted, "confidence": confidence}
