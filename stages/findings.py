"""The report's findings in words: pure functions that turn the other stages' numbers (metrics, McNemar's
tests, seed studies, invariance grids, a saved model's layers) into the tables and sentences of
reports/report.md whose wording follows the results. Nothing here reads a file or draws: stages/report.py
reads the inputs, saves the figures and hands these to the template; tests feed them tiny dicts.
"""

import keras
import numpy as np

from stages import document, figures, published, statistics
from stages.document import Markdown, Table, code, interval, md, percent
from stages.kinds import KINDS
from stages.params import MODELS, Experiment, Placing

MODEL_NAMES = {name: kind.label for name, kind in KINDS.items()}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}


# --- words and numbers ---

def points(difference: float) -> float:
    """A difference of two accuracies in percentage points, rounded as it is printed."""
    return round(abs(difference) * 100, 2)


def signed(difference: float, up: str, down: str, same: str) -> str:
    """Pick the wording from the sign; '{}' in `up`/`down` becomes 'N percentage points'."""
    size = points(difference)
    if size == 0:
        return same
    return (up if difference > 0 else down).format(f"{size:.2f} percentage points")


def a_class(name: str) -> str:
    """'a 7', 'an 8', 'an ankle boot', 'a T-shirt/top': a class name as a sentence says it."""
    said = name if name[1:2] == "-" else name.lower()
    return f"{'an' if said[0] in '8aeiou' else 'a'} {said}"


def data_label(exp: Experiment) -> str:
    return exp.data if exp.data == "centred" else f"{exp.data} ({exp.placement})"


def results_table(experiments: dict[str, Experiment], metrics: dict[str, dict], original: dict[str, dict],
                  labels: dict[str, str] | None = None) -> Table:
    """One row per experiment; `labels` names each dataset as a person does (the registry's labels)."""
    labels = labels or {}
    rows = []
    for name, exp in experiments.items():
        m = metrics[name]
        stopped = "" if m["stopped_by"] == "epochs" else f" ({m['stopped_by']})"
        rows.append((code(name), labels.get(exp.dataset, exp.dataset), data_label(exp), code(exp.model),
                     percent(m["test_accuracy"]),
                     interval(m["test_accuracy_low"], m["test_accuracy_high"]),
                     original.get(name, {}).get("as_printed", "—"), f"{m['epochs']} / {m['steps']:,}{stopped}",
                     f"{m['params']:,}"))
    header = ("experiment", "dataset", "data (placement)", "model", "test accuracy", "95% interval",
              "original (2018)", "epochs / steps", "parameters")
    return Table(header, tuple(rows), (False, False, False, False) + (True,) * 5)


def paired_test(comparisons: dict, a: str, b: str) -> dict:
    """McNemar's test of two experiments from the compare stage, whichever order it holds them in."""
    pairs = comparisons["pairs"]
    return pairs[f"{a} vs {b}"] if f"{a} vs {b}" in pairs else pairs[f"{b} vs {a}"]


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(test: dict) -> str:
    """'significant (p < 0.001)' or 'within test-set noise (p = 0.077)': the end of a sentence; the p-value
    is Holm's adjustment over the test's family (the compare stage's), the one significance is judged on."""
    return f"{'significant' if test['significant'] else 'within test-set noise'} ({p_value(test['p_adjusted'])})"


def _one_per_model(experiments: dict[str, Experiment], keep) -> dict[str, str]:
    """model -> the first experiment (in params.yaml order) that `keep` accepts, in MODELS order."""
    chosen = {}
    for name, exp in experiments.items():
        if keep(exp) and exp.model not in chosen:
            chosen[exp.model] = name
    return {model: chosen[model] for model in MODELS if model in chosen}


def _moved(exp: Experiment) -> bool:
    """Trained and tested on translated digits (not only on centre-placed ones)."""
    return exp.data == "translated" and exp.placement != "centre"


def translation_pairs(experiments: dict[str, Experiment]) -> list[tuple[str, str]]:
    """(trained and tested on centred digits, on translated ones) for each model that has both."""
    centred = _one_per_model(experiments, lambda e: e.data == "centred")
    moved = _one_per_model(experiments, _moved)
    return [(centred[model], moved[model]) for model in MODELS if model in centred and model in moved]


def architecture_pairs(experiments: dict[str, Experiment]) -> list[tuple[str, str, str]]:
    """(kind of digits, simpler model's experiment, next model's): each architecture against the next simpler one."""
    found = []
    for label, keep in (("centred", lambda e: e.data == "centred"), ("translated", _moved)):
        ladder = list(_one_per_model(experiments, keep).values())
        found += [(label, simple, name) for simple, name in zip(ladder, ladder[1:])]
    return found


def centre_pairs(experiments: dict[str, Experiment]) -> list[tuple[str, str]]:
    """(trained at the centre, the same model trained on translated digits), both tested on translated digits."""
    moved = _one_per_model(experiments, _moved)
    return [(name, moved[exp.model]) for name, exp in experiments.items()
            if exp.data == "translated" and exp.placement == "centre" and exp.model in moved]


def translation_costs(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict,
                      item: str = "digit") -> list[Markdown]:
    found = []
    for c, t in translation_pairs(experiments):
        label = MODEL_NAMES[experiments[c].model]
        change = signed(accuracy[t] - accuracy[c], f"gains the {label} {{}}", f"costs the {label} {{}}",
                        f"leaves the {label}'s accuracy unchanged")
        found.append(Markdown(
            f"Translation {change}: {code(c)} scores {percent(accuracy[c])} on centred {item}s, {code(t)} "
            f"{percent(accuracy[t])} on translated ones; {verdict(paired_test(comparisons, c, t))}."))
    return found


def architecture_steps(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict,
                       item: str = "digit") -> list[Markdown]:
    found = []
    for label, simple, name in architecture_pairs(experiments):
        change = signed(accuracy[name] - accuracy[simple], "gains {} over", "loses {} to", "matches")
        found.append(Markdown(
            f"On {label} {item}s the {MODEL_NAMES[experiments[name].model]} ({code(name)}, {percent(accuracy[name])}) "
            f"{change} the {MODEL_NAMES[experiments[simple].model]} ({code(simple)}, {percent(accuracy[simple])}); "
            f"{verdict(paired_test(comparisons, name, simple))}."))
    return found


def centre_training(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict,
                    item: str = "digit") -> list[Markdown]:
    """Digits always at the centre in training, moved in the test: does the model cope?"""
    found = []
    for name, other in centre_pairs(experiments):
        change = signed(accuracy[name] - accuracy[other], "{} higher than", "{} lower than", "the same as")
        found.append(Markdown(
            f"Trained only on {item}s at the canvas centre, the {MODEL_NAMES[experiments[name].model]} ({code(name)}) "
            f"scores {percent(accuracy[name])} on the translated test set, {change} when trained on translated "
            f"{item}s ({code(other)}, {percent(accuracy[other])}); {verdict(paired_test(comparisons, name, other))}."))
    return found


def versus_original(accuracy: dict[str, float], original: dict[str, dict]) -> list[Markdown]:
    found = []
    for name, test in original.items():
        if test["reported"] is not None and name in accuracy:
            change = signed(accuracy[name] - test["reported"], "{} higher", "{} lower", "the same")
            printed = md(test["as_printed"])  # a value read from a file: escaped like any other
            found.append(Markdown(f"{code(name)} scores {percent(accuracy[name])} here against {printed} "
                                  f"in the original: {change}, {verdict(test)}."))
    return found


def discussion(experiments: dict[str, Experiment], metrics: dict[str, dict], comparisons: dict,
               item: str = "digit") -> list[Markdown]:
    """The findings of one dataset's experiments (whose images show an `item`)."""
    accuracy = {name: metrics[name]["test_accuracy"] for name in experiments}
    ranked = sorted(accuracy, key=accuracy.get, reverse=True)
    best, m = ranked[0], metrics[ranked[0]]
    lead = "" if len(ranked) < 2 else (f"; its lead over {code(ranked[1])} ({percent(accuracy[ranked[1]])}) is "
                                       f"{verdict(paired_test(comparisons, best, ranked[1]))}")
    return [
        Markdown(f"The most accurate experiment is {code(best)} with {percent(accuracy[best])} "
                 f"({interval(m['test_accuracy_low'], m['test_accuracy_high'])}, {m['errors']:,} test errors){lead}."),
        *translation_costs(experiments, accuracy, comparisons, item),
        *architecture_steps(experiments, accuracy, comparisons, item),
        *centre_training(experiments, accuracy, comparisons, item),
        *versus_original(accuracy, comparisons["original"]),
    ]


# --- two kinds of noise: from seed to seed, and from sampling the test set ---

def seed_table(seeds: dict[str, dict]) -> Table:
    rows = []
    for name, r in seeds.items():
        sd = "—" if r["sd"] is None else f"{points(r['sd']):.2f}"
        larger = "—" if r["sd"] is None else ("seed" if r["sd"] > r["test_sd"] else "test set")
        rows.append((code(name), f"{r['runs']}", percent(r["mean"]), interval(r["min"], r["max"]), sd,
                     f"{points(r['test_sd']):.2f}", larger))
    return Table(("experiment", "runs", "mean", "range", "seed-to-seed sd (points)", "test-set sd (points)",
                  "larger"), tuple(rows), (False, True, True, True, True, True, False))


def seed_sd(names: tuple[str, ...], seeds: dict[str, dict]) -> float | None:
    """The seed-to-seed sd of a sum or difference of these runs: an experiment of one run takes the largest
    sd measured in `seeds`; None when none was measured."""
    measured = {name: seeds[name]["sd"] for name in seeds if seeds[name]["sd"] is not None}
    if not measured:
        return None
    largest = max(measured.values())
    return sum(measured.get(name, largest) ** 2 for name in names) ** 0.5


def seed_noise(a: str, b: str, difference: float, seeds: dict[str, dict]) -> tuple[bool | None, str]:
    """Could two single runs differ this much by their seeds alone? Beyond seed noise when the difference is
    more than twice the standard deviation of a difference of two runs, sqrt(sd_a^2 + sd_b^2). An experiment
    of one run takes the largest seed-to-seed sd measured in the pipeline, and the answer says so. When both
    have a seed study, the claim is made over their seeds instead (over_seeds)."""
    if all(seeds.get(name, {}).get("sd") is not None for name in (a, b)):
        return over_seeds(seeds[a], seeds[b])
    sd = seed_sd((a, b), seeds)
    if sd is None:
        return None, "not measured (one run each)"
    bound = 2 * sd
    assumed = [name for name in (a, b) if seeds.get(name, {}).get("sd") is None]
    beyond = abs(difference) > bound
    text = f"{'beyond' if beyond else 'within'} seed noise (±{points(bound):.2f} points)"
    if assumed:
        text += f", taking {' and '.join(map(code, assumed))} to vary like the most variable measured"
    return beyond, Markdown(text)


def over_seeds(a: dict, b: dict) -> tuple[bool, str]:
    """Do the seed studies of two experiments differ beyond their seeds? Beyond when their means differ by more
    than twice the sd of a difference of means, sqrt(sd_a^2 / n_a + sd_b^2 / n_b), and every run of the one
    is above every run of the other (by chance alone, with 3 runs each, 1 time in 20 for a given side)."""
    difference = a["mean"] - b["mean"]
    bound = 2 * (a["sd"] ** 2 / a["runs"] + b["sd"] ** 2 / b["runs"]) ** 0.5
    apart = a["min"] > b["max"] if difference > 0 else b["min"] > a["max"]
    beyond = abs(difference) > bound and apart
    runs = f"{a['runs']} and {b['runs']} seeds" if a["runs"] != b["runs"] else f"{a['runs']} seeds each"
    text = (f"over {runs}, means {difference * 100:+.2f} points apart: {'beyond' if beyond else 'within'} seed noise "
            f"(±{points(bound):.2f} points); {'every' if apart else 'not every'} run of the better above every run "
            "of the other")
    return beyond, text


def claims_table(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict,
                 seeds: dict[str, dict]) -> Table:
    """Every comparison of the discussion against both kinds of noise."""
    pairs = ([(t, c) for c, t in translation_pairs(experiments)] +
             [(name, simple) for _, simple, name in architecture_pairs(experiments)] + centre_pairs(experiments))
    rows = []
    for a, b in pairs:
        difference = accuracy[a] - accuracy[b]
        test = paired_test(comparisons, a, b)
        beyond, seed_text = seed_noise(a, b, difference, seeds)
        survives = "no" if not test["significant"] or beyond is False else "yes" if beyond else "not known"
        rows.append((Markdown(f"{code(a)} − {code(b)}"), f"{difference * 100:+.2f}", verdict(test), seed_text,
                     survives))
    return Table(("comparison", "difference (points)", "test set (McNemar)", "seed to seed", "survives both"),
                 tuple(rows), (False, True, False, False, False))


# --- beside the published benchmarks (stages/published.py) ---

SMALL = 250_000  # parameters: what "a small model" may have when it is set against the papers


def error_points(error: float) -> str:
    return f"{error * 100:.2f}%"


def benchmarks(experiments: dict[str, Experiment], metrics: dict[str, dict], comparisons: dict,
               seeds: dict[str, dict], placings: dict[str, Placing]) -> list[dict]:
    """For each placing some paper measured on: the papers' test errors, ours beside them with the 95% interval
    and the seeds' spread, each test against a paper (Holm-adjusted over all of them), and what the best small
    model does against the best published."""
    tests = comparisons["published"]
    found = []
    for data, placing in placings.items():
        ours = {name: exp for name, exp in experiments.items()
                if exp.data == data and published.neighbours(exp, placings)}
        if not ours:
            continue
        matched = {r for exp in ours.values() for r in published.neighbours(exp, placings)}
        papers = [r for r in published.RESULTS if r in matched]
        rows = [(md(r.model), md(r.paper), error_points(r.error), "—", "—", "—", "—") for r in papers]
        for name, exp in ours.items():
            m, runs = metrics[name], seeds[name]
            spread = "—" if runs["runs"] == 1 else \
                f"{error_points(1 - runs['mean'])} ({error_points(1 - runs['max'])} to {error_points(1 - runs['min'])})"
            against = "; ".join(_against(tests[f"{name} vs {r.model} ({r.paper})"]) for r in papers
                                if f"{name} vs {r.model} ({r.paper})" in tests)
            rows.append((Markdown(f"{code(name)} ({MODEL_NAMES[exp.model]})"), "this pipeline",
                         error_points(1 - m["test_accuracy"]),
                         interval(1 - m["test_accuracy_high"], 1 - m["test_accuracy_low"]), spread,
                         f"{m['params']:,}", Markdown(against)))
        table = Table(("model", "source", "test error", "95% interval", "seeds: mean (range)", "parameters",
                       "against each published error (Holm-adjusted)"), tuple(rows),
                      (False, False, True, True, True, True, False))
        alike = measured_alike(experiments, seeds, ours)
        found.append({"data": data, "dataset": next(iter(ours.values())).dataset, "placing": placing,
                      "table": table, "papers": sorted({r.paper for r in papers}),
                      "finding": _best_small(ours, metrics, seeds, papers, tests, alike)})
    return found


def _against(test: dict) -> str:
    lower = test["difference"] > 0  # accuracy above the paper's: error below it
    word = ("lower than" if lower else "higher than") if test["significant"] else "level with"
    return f"{word} {md(test['model'])} ({p_value(test['p_adjusted'])})"


def measured_alike(experiments: dict[str, Experiment], seeds: dict[str, dict],
                   ours: dict[str, Experiment]) -> dict[str, dict]:
    """The seed studies of the dataset of `ours`: what a run of one seed there is taken to vary like."""
    return {name: seeds[name] for name in of_dataset(experiments, next(iter(ours.values())).dataset)}


def seeds_against(name: str, error: float, paper_error: float, alike: dict[str, dict]) -> str:
    """Could the seeds move our side of the goal sentence across the paper's number?"""
    runs = alike[name]
    if runs["runs"] > 1:
        low, high = 1 - runs["max"], 1 - runs["min"]
        if low < paper_error < high:
            return " Its runs fall on both sides of that number."
        return f" Every one of its {runs['runs']} runs is {'below' if high < paper_error else 'above'} that number."
    sd = seed_sd((name,), alike)
    if sd is None:
        return " How far another seed would move it is not measured."
    gap, bound = abs(error - paper_error), 2 * sd
    return (f" Its one run is {points(gap):.2f} points from that number, {'beyond' if gap > bound else 'within'} "
            f"seed noise (±{points(bound):.2f} points, taking it to vary like the most variable experiment measured "
            "on its dataset).")


def _best_small(ours: dict[str, Experiment], metrics: dict[str, dict], seeds: dict[str, dict], papers: list,
                tests: dict, alike: dict[str, dict]) -> Markdown | None:
    """The sentence on the goal: the best model under SMALL parameters against the best published error, and
    whether its seeds could reverse that."""
    small = {name: 1 - seeds[name]["mean"] for name in ours if metrics[name]["params"] < SMALL}
    if not small or not papers:
        return None
    name = min(small, key=small.get)
    best = min(papers, key=lambda r: r.error)
    test = tests[f"{name} vs {best.model} ({best.paper})"]
    runs = seeds[name]["runs"]
    measured = f"a mean error of {error_points(small[name])} over {runs} seeds" if runs > 1 else \
        f"an error of {error_points(small[name])} (one seed)"
    beats = "below" if small[name] < best.error else "above"
    return Markdown(f"The best model here under {SMALL:,} parameters, {code(name)} "
                    f"({metrics[name]['params']:,}), has {measured}, {beats} the best published, "
                    f"{md(best.model)} ({md(best.paper)}, {error_points(best.error)}); its own run against that "
                    f"number: {_against(test)}." + seeds_against(name, small[name], best.error, alike))


# --- across datasets: does what holds for digits hold for garments? ---

def of_dataset(experiments: dict[str, Experiment], dataset: str) -> dict[str, Experiment]:
    return {name: exp for name, exp in experiments.items() if exp.dataset == dataset}


def across_datasets(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict,
                    seeds: dict[str, dict], labels: dict[str, str]) -> dict:
    """The models trained and tested on translated images of every dataset side by side: does their ranking
    hold, and does training only at the centre cost more on one dataset than on another? Within a dataset
    each difference has its McNemar test; across datasets (other test images) only seed noise can judge."""
    moved = {d: _one_per_model(of_dataset(experiments, d), _moved) for d in labels}
    kinds = [model for model in MODELS if all(model in moved[d] for d in labels)]
    rank = {d: sorted(kinds, key=lambda model: -accuracy[moved[d][model]]) for d in labels}

    def cell(d: str, model: str) -> Markdown:
        name = moved[d][model]
        return Markdown(f"{percent(accuracy[name])} ({code(name)}, rank {rank[d].index(model) + 1})")

    table = Table(("model", *(f"{label}: translated" for label in labels.values())),
                  tuple((MODEL_NAMES[model], *(cell(d, model) for d in labels)) for model in kinds),
                  (False,) + (True,) * len(labels))
    found = []
    def order(d: str) -> str:
        """'A > B ≈ C': each step significant (>) or within test-set noise (≈), by McNemar's test."""
        steps = [MODEL_NAMES[rank[d][0]]]
        for better, worse in zip(rank[d], rank[d][1:]):
            test = paired_test(comparisons, moved[d][better], moved[d][worse])
            steps.append(f"{'>' if test['significant'] else '≈'} {MODEL_NAMES[worse]}")
        return " ".join(steps)

    if len(kinds) > 1:
        orders = {d: order(d) for d in labels}
        noise = " (≈: the two differ within test-set noise)"
        if len(set(orders.values())) == 1:
            found.append(Markdown(f"The ranking of the {len(kinds)} models trained on translated images holds on "
                                  f"every dataset: {md(next(iter(orders.values())))}{noise}."))
        else:
            found.append(Markdown("The ranking of the models trained on translated images changes: " + "; ".join(
                f"on {md(labels[d])}, {md(order)}" for d, order in orders.items()) + f"{noise}."))
    costs = {}  # model -> dataset -> (centre-trained, translated-trained)
    for d in labels:
        for centre, other in centre_pairs(of_dataset(experiments, d)):
            costs.setdefault(experiments[centre].model, {})[d] = (centre, other)
    for model, pairs in costs.items():  # models measured so on two datasets or more; the rest is in each discussion
        if len(pairs) < 2:
            continue
        for d, (centre, other) in pairs.items():
            found.append(Markdown(
                f"On {md(labels[d])}, training the {MODEL_NAMES[model]} only at the centre "
                f"({code(centre)}, {percent(accuracy[centre])}) costs "
                f"{points(accuracy[other] - accuracy[centre]):.2f} points against training it on translated images "
                f"({code(other)}, {percent(accuracy[other])}); {verdict(paired_test(comparisons, centre, other))}."))
        (a, (ca, ta)), (b, (cb, tb)) = sorted(pairs.items(), key=lambda item: list(labels).index(item[0]))[:2]
        cost_a, cost_b = accuracy[ta] - accuracy[ca], accuracy[tb] - accuracy[cb]
        sd = seed_sd((ca, ta, cb, tb), seeds)
        noise = ("seed noise not measured" if sd is None else
                 f"{'beyond' if abs(cost_b - cost_a) > 2 * sd else 'within'} seed noise (±{points(2 * sd):.2f} points)")
        found.append(Markdown(
            f"Centre-only training costs the {MODEL_NAMES[model]} {points(cost_b - cost_a):.2f} points "
            f"{'more' if cost_b > cost_a else 'less'} on {md(labels[b])} than on {md(labels[a])}: {noise}."))
    return {"table": table if kinds else None, "findings": found}


# --- "Is the CNN translation invariant?": the invariance stage's grids ---

def condition(exp: Experiment, item: str = "digit") -> str:
    return "trained at the centre" if exp.placement == "centre" else f"trained on translated {item}s"


def invariance_grids(experiments: dict[str, Experiment], results: dict[str, dict], item: str = "digit"
                     ) -> dict[str, dict[str, np.ndarray]]:
    """grids[condition][model label] for the figures; a second experiment of the same kind keeps its name."""
    grids = {}
    for name, result in results.items():
        row = grids.setdefault(condition(experiments[name], item), {})
        label = MODEL_NAMES[experiments[name].model]
        row[name if label in row else label] = np.asarray(result["grid"])
    return grids


def with_interval(accuracy: float, digits: int) -> str:
    """'99.60% (98.98–99.84%)': an accuracy measured on `digits` test digits, with its 95% interval."""
    return f"{percent(accuracy)} ({interval(*statistics.wilson(round(accuracy * digits), digits))})"


def consistency_curves(experiments: dict[str, Experiment], results: dict[str, dict], item: str = "digit"
                       ) -> dict[str, dict[str, list]]:
    """curves[condition][model label] = consistency by distance, labelled as invariance_grids labels them."""
    curves = {}
    for name, result in results.items():
        row = curves.setdefault(condition(experiments[name], item), {})
        label = MODEL_NAMES[experiments[name].model]
        row[name if label in row else label] = result["consistency"]["by_distance"]
    return curves


def invariance_table(experiments: dict[str, Experiment], results: dict[str, dict], item: str = "digit") -> Table:
    rows = tuple((code(name), MODEL_NAMES[experiments[name].model], condition(experiments[name], item),
                  percent(r["mean"]), percent(r["min"]), with_interval(r["centre"], r["test_digits"]),
                  with_interval(r["worst_corner"], r["test_digits"]), f"{r['offsets_worse']} / {r['offsets_better']}",
                  f"{points(r['measured_range']):.2f} / {points(r['sampling_range_95']):.2f}",
                  consistency_cell(r["consistency"]),
                  percent(min(d["mean"] for d in r["consistency"]["by_distance"])))
                 for name, r in results.items())
    return Table(("experiment", "model", "training", "mean", "minimum", "centre (95% interval)",
                  "worst corner (95% interval)", "offsets worse / better than centre",
                  "range / by sampling alone (points)", "consistency (95% interval)", "consistency, worst distance"),
                 rows, (False, False, False) + (True,) * 8)


def consistency_cell(c: dict) -> str:
    """'99.12% (98.90–99.34%)': how often a digit kept its class between two offsets, with its interval."""
    return f"{percent(c['mean'])} ({interval(c['low'], c['high'])})"


def consistency_finding(experiments: dict[str, Experiment], results: dict[str, dict], goal: float = 0.99,
                        item: str = "digit") -> Markdown:
    """The most consistent model, and whether it keeps its answer for `goal` of the moves at every distance
    (99%: the bar the invariance study set itself for MNIST; said as a bar, not as a goal, of any dataset)."""
    worst = {name: min(d["mean"] for d in r["consistency"]["by_distance"]) for name, r in results.items()}
    best = max(worst, key=worst.get)
    r = results[best]
    verdict = (f"{percent(goal)} or more at every distance" if worst[best] >= goal else
               f"under {percent(goal)} at its worst distance")
    return Markdown(
        f"The most consistent model is {code(best)} ({MODEL_NAMES[experiments[best].model]}): moved between any two "
        f"offsets, {a_class(item)} keeps its predicted class in {consistency_cell(r['consistency'])} of the moves, "
        f"and in at least {percent(worst[best])} at each distance: {verdict}.")


def offsets_beyond_noise(r: dict) -> str:
    """'12 of 168 other offsets score lower than the centre beyond sampling noise, 0 higher'."""
    others = len(r["grid"]) ** 2 - 1
    return (f"{r['offsets_worse']} of its {others} other offsets score lower than the centre beyond sampling noise "
            f"and {r['offsets_better']} higher")


def invariance_findings(experiments: dict[str, Experiment], results: dict[str, dict], item: str = "digit"
                        ) -> list[Markdown]:
    """Per model: how flat its grid is when trained on moved digits, and what it loses away from the centre."""
    found = []
    measured = {name: experiments[name] for name in results}
    moved = _one_per_model(measured, _moved)
    centre = _one_per_model(measured, lambda e: e.placement == "centre")
    if "cnn" in moved and "cnn" in centre:
        drop = results[centre["cnn"]]["centre"] - results[centre["cnn"]]["worst_corner"]
        grid = np.asarray(results[moved["cnn"]]["grid"])
        spread = grid.max() - grid.min()
        verdict = "Not by its architecture alone" if drop > 0.05 else "Largely, even by its architecture alone"
        source = "mostly from the training data" if spread < drop else "from its architecture as much as its data"
        found.append(Markdown(
            f"{verdict}: trained at one position, the original CNN loses {points(drop):.2f} percentage points in "
            f"the worst corner; trained on translated {item}s, its accuracy varies by {points(spread):.2f} points "
            f"across the offsets, where sampling alone gives up to "
            f"{points(results[moved['cnn']]['sampling_range_95']):.2f}. "
            f"Its tolerance to translation comes {source}."))
    for model in MODELS:
        label = MODEL_NAMES[model]
        if model in moved:
            r = results[moved[model]]
            found.append(Markdown(
                f"Trained on translated {item}s, the {label} ({code(moved[model])}) scores between "
                f"{percent(r['min'])} and {percent(max(max(row) for row in r['grid']))} across the offsets "
                f"(mean {percent(r['mean'])}): a range of {points(r['measured_range']):.2f} points against "
                f"{points(r['sampling_range']):.2f} expected from sampling alone "
                f"(95th percentile {points(r['sampling_range_95']):.2f}); {offsets_beyond_noise(r)}."))
        if model in centre:
            r = results[centre[model]]
            drop = signed(r["worst_corner"] - r["centre"], "gains {}", "loses {}", "loses nothing")
            found.append(Markdown(
                f"Trained only at the centre, the {label} ({code(centre[model])}) scores {percent(r['centre'])} "
                f"with the {item} at the centre and {percent(r['worst_corner'])} in the worst corner: it {drop} away "
                f"from where it was trained (mean over all offsets {percent(r['mean'])}); {offsets_beyond_noise(r)}."))
    losses = {n: r["centre"] - r["worst_corner"] for n, r in results.items() if experiments[n].placement == "centre"}
    if len(losses) > 1:
        best, worst = min(losses, key=losses.get), max(losses, key=losses.get)
        found.append(Markdown(
            f"Among the centre-trained models, {code(best)} ({MODEL_NAMES[experiments[best].model]}) keeps most of "
            f"its accuracy away from the centre ({points(losses[best]):.2f} points lost in the worst corner) and "
            f"{code(worst)} ({MODEL_NAMES[experiments[worst].model]}) the least ({points(losses[worst]):.2f} "
            f"points)."))
    return found


# --- one model: its layers and its mistakes ---

def layer_table(model: keras.Model) -> Table:
    """What the original printed as its variable list: each layer, its weights and their sizes."""
    rows = []
    for layer in model.layers:
        try:
            shape = "×".join(str(d) for d in layer.output.shape[1:])
        except (AttributeError, ValueError):
            shape = ""
        weights = ", ".join(f"{w.name} {'×'.join(str(d) for d in w.shape)}" for w in layer.weights)
        rows.append((code(layer.name), type(layer).__name__, shape, weights or "—", f"{layer.count_params():,}"))
    rows.append(("total", "", "", "", f"{model.count_params():,}"))
    return Table(("layer", "type", "output shape", "weights", "parameters"), tuple(rows),
                 (False, False, False, False, True))


def parameters_sentence(name: str, model: keras.Model) -> Markdown:
    total = model.count_params()
    largest = max(model.layers, key=lambda layer: layer.count_params())
    kind = document.md(type(largest).__name__)
    if largest.count_params() == total:
        return Markdown(f"{code(name)} has {total:,} parameters, all in its layer {code(largest.name)} ({kind}).")
    return Markdown(f"{code(name)} has {total:,} parameters; its largest layer, {code(largest.name)} ({kind}), "
                    f"holds {largest.count_params() / total:.1%} of them.")


def mistakes(actual: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...] = tuple("0123456789")) -> dict:
    """How many test images are wrong, and the most frequent (true, predicted) pair: ties go to the lower label."""
    counts = figures.confusion_matrix(actual, predicted)
    wrong = int(counts.sum() - np.trace(counts))
    np.fill_diagonal(counts, 0)
    true, read_as = np.unravel_index(np.argmax(counts), counts.shape)  # the first maximum
    most = {"digit": a_class(classes[true]), "read_as": a_class(classes[read_as]), "times": int(counts[true, read_as])}
    return {"wrong": wrong, "total": len(actual), "most_frequent": most if wrong else None}
