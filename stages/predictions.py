"""reports/predictions/<experiment>.csv: one row per test image, written by evaluate, read by
compare and report (and drawn by `dvc plots`' confusion template)."""

from pathlib import Path

import numpy as np

from stages import files

HEADER = "index,actual,predicted,confidence"
CLASSES = 10


def to_csv(probabilities: np.ndarray, labels: np.ndarray) -> str:
    rows = [HEADER]
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    rows += [f"{i},{a},{p},{c:.4f}" for i, (a, p, c) in enumerate(zip(labels, predicted, confidence))]
    return "\n".join(rows) + "\n"


def problem(table: np.ndarray) -> str | None:
    """What is wrong with the rows of a predictions table, in a few words; None when nothing is."""
    index, actual, predicted, confidence = table.T
    if not np.array_equal(index, np.arange(len(table))):
        return "its index column is not 0, 1, 2, ..."
    for name, column in (("actual", actual), ("predicted", predicted)):
        if len(column) and (not np.all(column == np.round(column)) or column.min() < 0 or column.max() >= CLASSES):
            return f"{name} classes from {column.min():g} to {column.max():g}, expected 0 to {CLASSES - 1}"
    finite = np.all(np.isfinite(confidence))
    if len(confidence) and not (finite and confidence.min() >= 0 and confidence.max() <= 1):
        return f"confidence from {confidence.min():g} to {confidence.max():g}, expected 0 to 1"
    return None


def read(path: Path, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """actual, predicted, confidence; `labels`, when given, must be the actual column."""
    with files.reading(path, ValueError, IndexError, UnicodeDecodeError):
        with open(path, encoding="utf-8") as f:
            header = f.readline().strip()
        if header != HEADER:
            raise ValueError(f"header '{header}', expected '{HEADER}'")
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        if table.shape[1] != 4:
            raise ValueError(f"rows of {table.shape[1]} values, expected 4")
    if (found := problem(table)) is not None:
        raise files.invalid(path, found)
    with files.reading(path, ValueError):
        actual, predicted, confidence = table[:, 1].astype(np.int64), table[:, 2].astype(np.int64), table[:, 3]
        if labels is not None and (len(actual) != len(labels) or not np.array_equal(actual, labels)):
            raise ValueError("its labels are not the test set's")
    return {"actual": actual, "predicted": predicted, "confidence": confidence}
