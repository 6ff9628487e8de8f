"""Stage `compare`: which differences between test accuracies are more than test-set sampling noise.

    python -m stages.compare

Every experiment is scored on the same MNIST test digits (centred, or each one placed on the
canvas), so any two are compared digit by digit with McNemar's exact test, from
reports/predictions/. Each experiment the 2018 notebook ran is also compared with the accuracy
it printed, which came from other test placements and another model: an unpaired test. Writes
reports/comparisons.json, read by the report and by `dvc metrics diff`.
"""

import itertools
import sys

import numpy as np

from stages import cli, files, params, paths, predictions, statistics

# What the 2018 notebook printed for the experiments it ran: (accuracy, as it put it).
ORIGINAL = {
    "linear_mnist": (0.92, "about 92%"),
    "linear_translated": (None, "not reported"),
    "mlp_translated": (0.9538, "95.38%"),
    "cnn_translated": (0.9651, "96.51%"),
}


def correctness(experiments) -> dict[str, np.ndarray]:
    """experiment -> which test digits it got right; all must be scored on the same digits."""
    correct, labels = {}, None
    for name in experiments:
        path = paths.predictions(name)
        table = predictions.read(path, labels)
        labels = table["actual"] if labels is None else labels
        correct[name] = table["actual"] == table["predicted"]
    return correct


def pairs(correct: dict[str, np.ndarray]) -> dict[str, dict]:
    """'a vs b' -> McNemar's test of a against b, for every two experiments in params.yaml order."""
    return {f"{a} vs {b}": statistics.paired(correct[a], correct[b]) for a, b in itertools.combinations(correct, 2)}


def versus_original(correct: dict[str, np.ndarray]) -> dict[str, dict]:
    """Each experiment the notebook ran against what it printed, as if measured on as many test digits."""
    found = {}
    for name, (reported, as_printed) in ORIGINAL.items():
        if name not in correct:
            continue
        found[name] = {"reported": reported, "as_printed": as_printed}
        if reported is not None:
            n, right = len(correct[name]), int(correct[name].sum())
            p = statistics.two_proportions(right, n, round(reported * n), n)
            found[name] |= {"difference": right / n - reported, "p_value": p, "significant": p < statistics.ALPHA}
    return found


def main() -> None:
    correct = correctness(params.load().experiments)
    result = {"test_digits": len(next(iter(correct.values()))), "level": statistics.LEVEL,
              "pairs": pairs(correct), "original": versus_original(correct)}
    files.write_json(paths.COMPARISONS, result)
    significant = sum(pair["significant"] for pair in result["pairs"].values())
    print(f"compare: {significant} of {len(result['pairs'])} pairs of experiments differ beyond test-set noise "
          f"(McNemar, 5%); wrote {paths.COMPARISONS}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
