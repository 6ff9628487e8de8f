"""Stage `invariance`: one trained model's test accuracy with the digit at every offset of the canvas.

    python -m stages.invariance <experiment>

Takes `invariance.test_digits` test digits (a fixed seeded subset), places every one of
them at each of the canvas's (canvas - 27)^2 offsets and writes the accuracy grid with
its summary to reports/metrics/invariance/<experiment>.json, with what of it is more than
sampling noise: the same digits at each offset against the centre (McNemar's exact test,
Holm-adjusted), and the grid's spread against the spread sampling alone gives; and how often
the model keeps a digit's class when the digit moves (consistency, over every two offsets). The
summary alone (mean, minimum, centre, worst corner, consistency) also goes to
reports/headlines/invariance/<experiment>.json, for `dvc metrics`; the grids are data for the report.
"""

import json
import sys
import time

import numpy as np

from stages import cli, datasets, files, params, paths, statistics
from stages.canvas import DIGIT, place

BATCH = 1000


def test_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a fixed random subset of the test set, in test-set order."""
    if size > len(labels):
        raise params.ParamsError(f"invariance.test_digits = {size}: the test set has only {len(labels)} digits")
    return np.sort(np.random.default_rng(seed).choice(len(labels), size, replace=False))


def predicted_at_offsets(predict, digits: np.ndarray, canvas: int, progress=print) -> np.ndarray:
    """predicted[row, col, i] = the class read for digit i with its top-left corner at (row, col).

    `predict` maps float32 (n, canvas, canvas, 1) images to (n, 10) scores. One canvas row
    of offsets is placed and predicted at a time, so memory stays at n * (canvas - 27) images.
    """
    size = canvas - DIGIT + 1
    predicted = np.empty((size, size, len(digits)), dtype=np.int8)
    n = len(digits)
    for row in range(size):
        offsets = np.stack(np.broadcast_arrays(row, np.repeat(np.arange(size), n)), axis=1)
        images = place(np.tile(digits, (size, 1, 1)), offsets, canvas)
        predicted[row] = np.asarray(predict(datasets.as_input(images))).argmax(axis=1).reshape(size, n)
        progress(row + 1, size)
    return predicted


def correct_at_offsets(predict, digits: np.ndarray, labels: np.ndarray, canvas: int, progress=print) -> np.ndarray:
    """correct[row, col, i] = whether digit i is read right with its top-left corner at (row, col)."""
    return predicted_at_offsets(predict, digits, canvas, progress) == labels


def consistency(predicted: np.ndarray) -> dict:
    """How often the model gives a digit the same class at two offsets (Zhang 2019's consistency), over
    every two offsets of the grid, overall and by their distance (pixels along the farther axis, as the
    accuracy rings); each with a 95% interval over the digits (each digit's share of agreeing pairs)."""
    size, _, n = predicted.shape
    agree = np.zeros((size, n))  # agree[d, i]: the pairs at distance d on which digit i kept its class
    pairs = np.zeros(size, dtype=np.int64)
    for dr in range(size):  # every shift (dr, dc) between two offsets, each unordered pair once
        for dc in range(-(size - 1), size):
            if dr == 0 and dc <= 0:
                continue
            left, right = max(0, -dc), size - max(0, dc)  # columns c where c and c + dc are both on the grid
            same = predicted[:size - dr, left:right] == predicted[dr:, left + dc:right + dc]
            agree[max(dr, abs(dc))] += same.sum(axis=(0, 1))
            pairs[max(dr, abs(dc))] += same.shape[0] * same.shape[1]

    def mean_and_interval(per_digit: np.ndarray) -> dict:
        mean, half = float(per_digit.mean()), 1.96 * float(per_digit.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
        return {"mean": mean, "low": max(0.0, mean - half), "high": min(1.0, mean + half)}

    by_distance = [{"distance": d, "pairs": int(pairs[d])} | mean_and_interval(agree[d] / pairs[d])
                   for d in range(1, size) if pairs[d]]
    overall = mean_and_interval(agree.sum(axis=0) / pairs.sum())
    return {"pairs": int(pairs.sum())} | overall | {"by_distance": by_distance}


def centre(size: int) -> int:
    """The middle offset on each axis (the upper-left of the middle four on an even grid)."""
    return (size - 1) // 2


def summary(grid: np.ndarray) -> dict[str, float]:
    """Mean, minimum, centre and worst corner of an accuracy grid."""
    last, middle = len(grid) - 1, centre(len(grid))
    corners = [grid[0, 0], grid[0, last], grid[last, 0], grid[last, last]]
    return {"mean": float(grid.mean()), "min": float(grid.min()), "centre": float(grid[middle, middle]),
            "worst_corner": float(min(corners))}


def noise(correct: np.ndarray) -> dict:
    """How much of the grid's variation is more than sampling noise: every offset against the centre
    on the same digits (McNemar, Holm-adjusted over all offsets), and the spread of the grid against
    the spread that cells of this many digits would show by sampling alone."""
    size, n = correct.shape[0], correct.shape[2]
    grid, middle = correct.mean(axis=2), correct[centre(size), centre(size)]
    p = np.ones((size, size))
    others = [(r, c) for r in range(size) for c in range(size) if (r, c) != (centre(size),) * 2]
    raw = [statistics.mcnemar(int(np.sum(correct[r, c] & ~middle)), int(np.sum(~correct[r, c] & middle)))
           for r, c in others]
    for (r, c), adjusted in zip(others, statistics.holm(raw)):
        p[r, c] = adjusted
    differs = p < statistics.ALPHA
    low, high = statistics.wilson(int(middle.sum()), n)
    expected, expected_95 = statistics.sampling_range(float(grid.mean()), n, size * size)
    return {"centre_low": low, "centre_high": high,
            "offsets_worse": int(np.sum(differs & (grid < middle.mean()))),
            "offsets_better": int(np.sum(differs & (grid > middle.mean()))),
            "measured_range": float(np.ptp(grid)), "sampling_range": expected, "sampling_range_95": expected_95,
            "p_vs_centre": np.round(p, 6).tolist()}


def main(experiment: str) -> None:
    p = params.load()
    exp = p.experiment(experiment)
    name = exp.name
    files.check_outputs(paths.invariance(name), paths.invariance_headline(name))
    test = datasets.load(exp.dataset, "centred", only=("x_test", "y_test"))
    subset = test_subset(test["y_test"], p.invariance.test_digits, p.invariance.seed)
    digits, labels = test["x_test"][subset], test["y_test"][subset].astype(np.int64)
    from stages import saved_models  # Keras: seconds to import, so params and data are checked first

    model = saved_models.load(paths.model(name), exp.model)
    canvas = model.input_shape[1]
    start = time.perf_counter()

    def progress(done: int, rows: int) -> None:
        elapsed = time.perf_counter() - start
        print(f"invariance: {name}: offset row {done}/{rows}, {elapsed:.0f} s so far, "
              f"about {elapsed / done * (rows - done):.0f} s left", flush=True)

    predicted = predicted_at_offsets(lambda x: model.predict(x, batch_size=BATCH, verbose=0), digits, canvas, progress)
    correct = predicted == labels
    seconds = time.perf_counter() - start
    grid = correct.mean(axis=2)
    result = summary(grid) | noise(correct) | {"consistency": consistency(predicted),
                                               "test_digits": len(subset), "canvas": canvas, "grid": grid.tolist()}
    headline = {name: {"invariance": summary(grid) | {"consistency": result["consistency"]["mean"]}}}
    files.write_all({paths.invariance(name): (json.dumps(result, indent=2) + "\n").encode(),
                     paths.invariance_headline(name): (json.dumps(headline, indent=2) + "\n").encode()})
    print(f"invariance: {name}: mean {result['mean']:.2%}, min {result['min']:.2%}, centre {result['centre']:.2%}, "
          f"worst corner {result['worst_corner']:.2%} ({len(grid)}x{len(grid)} offsets x {len(subset)} digits, "
          f"{seconds:.0f} s); {result['offsets_worse']} offsets worse and {result['offsets_better']} better than the "
          f"centre beyond sampling noise")


if __name__ == "__main__":
    sys.exit(cli.run(main))
