"""Stage `compare`: which differences between test accuracies are more than test-set sampling noise.

    python -m stages.compare

The experiments of one dataset are scored on the same test images (centred, or each one placed
on the canvas), so any two of them are compared image by image with McNemar's exact test, from
reports/predictions/; experiments of different datasets are not compared here, nor those of a
benchmark protocol (translate.protocols) with the others: each protocol is a question of its own.
Each experiment the 2018 notebook ran is also compared with the accuracy it printed, and each one
that a paper's benchmark matches (stages/published.py) with the paper's error; those numbers came
from other test placements and other models: an unpaired test, taking each as measured on as many
test images. Each of the three families of tests is adjusted for how many it holds (Holm's step-down
method), so that the chance of any false "significant" in a family stays below 5%; the raw p-value
is kept beside the adjusted one. Writes reports/comparisons.json, read by the report.
"""

import itertools
import sys

import numpy as np

from stages import cli, files, params, paths, predictions, published, statistics
from stages.params import Experiment, Placing

# What the 2018 notebook printed for the experiments it ran: (accuracy, as it put it).
ORIGINAL = {
    "linear_mnist": (0.92, "about 92%"),
    "linear_translated": (None, "not reported"),
    "mlp_translated": (0.9538, "95.38%"),
    "cnn_translated": (0.9651, "96.51%"),
}


def correctness(experiments: dict[str, Experiment]) -> dict[str, np.ndarray]:
    """experiment -> which test images it got right; those of one dataset must be scored on the same images."""
    correct, labels = {}, {}
    for name, exp in experiments.items():
        table = predictions.read(paths.predictions(name), labels.get(exp.dataset))
        labels.setdefault(exp.dataset, table["actual"])
        correct[name] = table["actual"] == table["predicted"]
    return correct


def adjusted(tests: dict[str, dict]) -> dict[str, dict]:
    """The family of `tests` with Holm-adjusted p-values, and significance judged on them."""
    family = [name for name, test in tests.items() if "p_value" in test]
    for name, p in zip(family, statistics.holm([tests[name]["p_value"] for name in family])):
        tests[name] |= {"p_adjusted": float(p), "significant": bool(p < statistics.ALPHA), "family": len(family)}
    return tests


def pairs(correct: dict[str, np.ndarray], experiments: dict[str, Experiment],
          protocols: frozenset[str] = frozenset()) -> dict[str, dict]:
    """'a vs b' -> McNemar's test of a against b, for every two experiments of one dataset (and, for those on
    a benchmark protocol, of one protocol) in params.yaml order."""
    def question(exp: Experiment) -> tuple[str, str | None]:
        return exp.dataset, exp.data if exp.data in protocols else None

    return adjusted({f"{a} vs {b}": statistics.paired(correct[a], correct[b])
                     for a, b in itertools.combinations(correct, 2)
                     if question(experiments[a]) == question(experiments[b])})


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
            found[name] |= {"difference": right / n - reported, "p_value": p}
    return adjusted(found)


def versus_published(correct: dict[str, np.ndarray], experiments: dict[str, Experiment],
                     placings: dict[str, Placing]) -> dict[str, dict]:
    """'experiment vs model (paper)' -> each experiment against each published error measured as it is tested."""
    found = {}
    for name, exp in experiments.items():
        for result in published.neighbours(exp, placings):
            n, right = len(correct[name]), int(correct[name].sum())
            reported = round((1 - result.error) * published.MNIST_TEST)
            p = statistics.two_proportions(right, n, reported, published.MNIST_TEST)
            found[f"{name} vs {result.model} ({result.paper})"] = {
                "experiment": name, "paper": result.paper, "model": result.model, "published_error": result.error,
                "difference": right / n - (1 - result.error), "p_value": p}
    return adjusted(found)


def main() -> None:
    p = params.load()
    experiments = p.experiments
    files.check_outputs(paths.COMPARISONS)
    correct = correctness(experiments)
    result = {"test_digits": len(next(iter(correct.values()))), "level": statistics.LEVEL,
              "pairs": pairs(correct, experiments, frozenset(p.translate.protocols)),
              "original": versus_original(correct),
              "published": versus_published(correct, experiments, p.translate.placings)}
    files.write_json(paths.COMPARISONS, result)
    significant = sum(pair["significant"] for pair in result["pairs"].values())
    print(f"compare: {significant} of {len(result['pairs'])} pairs of experiments differ beyond test-set noise "
          f"(McNemar, 5%, Holm-adjusted over the {len(result['pairs'])}); {len(result['published'])} tests against "
          f"published errors; wrote {paths.COMPARISONS}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
