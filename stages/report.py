"""Stage `report`: the figures, reports/report.md and a self-contained reports/index.html.

    python -m stages.report

Reads what the other stages wrote for every experiment in params.yaml: test metrics, the compare
stage's significance tests, training logs, predictions, saved models, the invariance grids and the
datasets. This module computes the numbers,
tables and figures, and the sentences whose wording follows the results; the prose around them is the
template templates/report.md.j2. The page is made from that Markdown, so both say the same thing, and
the same inputs give byte-identical output (no dates).
"""

import sys
from pathlib import Path

import keras
import numpy as np

from stages import cli, datasets, document, figures, files, params, paths, predictions, saved_models, statistics
from stages.document import Markdown, Table, code, interval, percent
from stages.params import MODELS, Experiment

MODEL_NAMES = {"linear": "linear model", "mlp": "MLP", "cnn": "CNN", "cnn_gap": "global-pooling CNN"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}
TEST_DIGIT = 0  # the test image whose feature maps are shown
ERRORS_SHOWN = 12


# --- words and numbers: pure functions of the metrics, so tests feed them tiny dicts ---

def _points(difference: float) -> float:
    """A difference of two accuracies in percentage points, rounded as it is printed."""
    return round(abs(difference) * 100, 2)


def signed(difference: float, up: str, down: str, same: str) -> str:
    """Pick the wording from the sign; '{}' in `up`/`down` becomes 'N percentage points'."""
    size = _points(difference)
    if size == 0:
        return same
    return (up if difference > 0 else down).format(f"{size:.2f} percentage points")


def a_digit(digit: int) -> str:
    """'a 7', 'an 8'."""
    return f"{'an' if digit == 8 else 'a'} {digit}"


def _data_label(exp: Experiment) -> str:
    return exp.data if exp.data == "centred" else f"{exp.data} ({exp.placement})"


def results_table(experiments: dict[str, Experiment], metrics: dict[str, dict], original: dict[str, dict]) -> Table:
    rows = []
    for name, exp in experiments.items():
        m = metrics[name]
        stopped = "" if m["stopped_by"] == "epochs" else f" ({m['stopped_by']})"
        rows.append((code(name), _data_label(exp), exp.model, percent(m["test_accuracy"]),
                     interval(m["test_accuracy_low"], m["test_accuracy_high"]),
                     original.get(name, {}).get("as_printed", "—"), f"{m['epochs']} / {m['steps']:,}{stopped}",
                     f"{m['params']:,}"))
    header = ("experiment", "data (placement)", "model", "test accuracy", "95% interval", "original (2018)",
              "epochs / steps", "parameters")
    return Table(header, tuple(rows), (False, False, False) + (True,) * 5)


def paired_test(comparisons: dict, a: str, b: str) -> dict:
    """McNemar's test of two experiments from the compare stage, whichever order it holds them in."""
    pairs = comparisons["pairs"]
    return pairs[f"{a} vs {b}"] if f"{a} vs {b}" in pairs else pairs[f"{b} vs {a}"]


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(test: dict) -> str:
    """'significant (p < 0.001)' or 'within test-set noise (p = 0.077)': the end of a sentence."""
    return f"{'significant' if test['significant'] else 'within test-set noise'} ({p_value(test['p_value'])})"


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


def translation_costs(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict
                      ) -> list[Markdown]:
    found = []
    for c, t in translation_pairs(experiments):
        label = MODEL_NAMES[experiments[c].model]
        change = signed(accuracy[t] - accuracy[c], f"gains the {label} {{}}", f"costs the {label} {{}}",
                        f"leaves the {label}'s accuracy unchanged")
        found.append(Markdown(
            f"Translation {change}: {code(c)} scores {percent(accuracy[c])} on centred digits, {code(t)} "
            f"{percent(accuracy[t])} on translated ones; {verdict(paired_test(comparisons, c, t))}."))
    return found


def architecture_steps(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict
                       ) -> list[Markdown]:
    found = []
    for label, simple, name in architecture_pairs(experiments):
        change = signed(accuracy[name] - accuracy[simple], "gains {} over", "loses {} to", "matches")
        found.append(Markdown(
            f"On {label} digits the {MODEL_NAMES[experiments[name].model]} ({code(name)}, {percent(accuracy[name])}) "
            f"{change} the {MODEL_NAMES[experiments[simple].model]} ({code(simple)}, {percent(accuracy[simple])}); "
            f"{verdict(paired_test(comparisons, name, simple))}."))
    return found


def centre_training(experiments: dict[str, Experiment], accuracy: dict[str, float], comparisons: dict
                    ) -> list[Markdown]:
    """Digits always at the centre in training, moved in the test: does the model cope?"""
    found = []
    for name, other in centre_pairs(experiments):
        change = signed(accuracy[name] - accuracy[other], "{} higher than", "{} lower than", "the same as")
        found.append(Markdown(
            f"Trained only on digits at the canvas centre, the {MODEL_NAMES[experiments[name].model]} ({code(name)}) "
            f"scores {percent(accuracy[name])} on the translated test set, {change} when trained on translated "
            f"digits ({code(other)}, {percent(accuracy[other])}); {verdict(paired_test(comparisons, name, other))}."))
    return found


def versus_original(accuracy: dict[str, float], original: dict[str, dict]) -> list[Markdown]:
    found = []
    for name, test in original.items():
        if test["reported"] is not None and name in accuracy:
            change = signed(accuracy[name] - test["reported"], "{} higher", "{} lower", "the same")
            found.append(Markdown(f"{code(name)} scores {percent(accuracy[name])} here against {test['as_printed']} "
                                  f"in the original: {change}, {verdict(test)}."))
    return found


def discussion(experiments: dict[str, Experiment], metrics: dict[str, dict], comparisons: dict) -> list[Markdown]:
    accuracy = {name: metrics[name]["test_accuracy"] for name in experiments}
    ranked = sorted(accuracy, key=accuracy.get, reverse=True)
    best, m = ranked[0], metrics[ranked[0]]
    lead = "" if len(ranked) < 2 else (f"; its lead over {code(ranked[1])} ({percent(accuracy[ranked[1]])}) is "
                                       f"{verdict(paired_test(comparisons, best, ranked[1]))}")
    return [
        Markdown(f"The most accurate experiment is {code(best)} with {percent(accuracy[best])} "
                 f"({interval(m['test_accuracy_low'], m['test_accuracy_high'])}, {m['errors']:,} test errors){lead}."),
        *translation_costs(experiments, accuracy, comparisons),
        *architecture_steps(experiments, accuracy, comparisons),
        *centre_training(experiments, accuracy, comparisons),
        *versus_original(accuracy, comparisons["original"]),
    ]


# --- two kinds of noise: from seed to seed, and from sampling the test set ---

def seed_table(seeds: dict[str, dict]) -> Table:
    rows = []
    for name, r in seeds.items():
        sd = "—" if r["sd"] is None else f"{_points(r['sd']):.2f}"
        larger = "—" if r["sd"] is None else ("seed" if r["sd"] > r["test_sd"] else "test set")
        rows.append((code(name), f"{r['runs']}", percent(r["mean"]), interval(r["min"], r["max"]), sd,
                     f"{_points(r['test_sd']):.2f}", larger))
    return Table(("experiment", "runs", "mean", "range", "seed-to-seed sd (points)", "test-set sd (points)",
                  "larger"), tuple(rows), (False, True, True, True, True, True, False))


def seed_noise(a: str, b: str, difference: float, seeds: dict[str, dict]) -> tuple[bool | None, str]:
    """Could two single runs differ this much by their seeds alone? Beyond seed noise when the difference is
    more than twice the standard deviation of a difference of two runs, sqrt(sd_a^2 + sd_b^2). An experiment
    of one run takes the largest seed-to-seed sd measured in the pipeline, and the answer says so."""
    measured = {name: r["sd"] for name, r in seeds.items() if r["sd"] is not None}
    if not measured:
        return None, "not measured (one run each)"
    largest = max(measured.values())
    bound = 2 * (measured.get(a, largest) ** 2 + measured.get(b, largest) ** 2) ** 0.5
    assumed = [name for name in (a, b) if name not in measured]
    beyond = abs(difference) > bound
    text = f"{'beyond' if beyond else 'within'} seed noise (±{_points(bound):.2f} points)"
    if assumed:
        text += f", taking {' and '.join(map(code, assumed))} to vary like the most variable measured"
    return beyond, Markdown(text)


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


# --- "Is the CNN translation invariant?": the invariance stage's grids ---

def condition(exp: Experiment) -> str:
    return "trained at the centre" if exp.placement == "centre" else "trained on translated digits"


def invariance_grids(experiments: dict[str, Experiment], results: dict[str, dict]) -> dict[str, dict[str, np.ndarray]]:
    """grids[condition][model label] for the figures; a second experiment of the same kind keeps its name."""
    grids = {}
    for name, result in results.items():
        row = grids.setdefault(condition(experiments[name]), {})
        label = MODEL_NAMES[experiments[name].model]
        row[name if label in row else label] = np.asarray(result["grid"])
    return grids


def with_interval(accuracy: float, digits: int) -> str:
    """'99.60% (98.98–99.84%)': an accuracy measured on `digits` test digits, with its 95% interval."""
    return f"{percent(accuracy)} ({interval(*statistics.wilson(round(accuracy * digits), digits))})"


def invariance_table(experiments: dict[str, Experiment], results: dict[str, dict]) -> Table:
    rows = tuple((code(name), MODEL_NAMES[experiments[name].model], condition(experiments[name]),
                  percent(r["mean"]), percent(r["min"]), with_interval(r["centre"], r["test_digits"]),
                  with_interval(r["worst_corner"], r["test_digits"]), f"{r['offsets_worse']} / {r['offsets_better']}",
                  f"{_points(r['measured_range']):.2f} / {_points(r['sampling_range_95']):.2f}")
                 for name, r in results.items())
    return Table(("experiment", "model", "training", "mean", "minimum", "centre (95% interval)",
                  "worst corner (95% interval)", "offsets worse / better than centre",
                  "range / by sampling alone (points)"), rows, (False, False, False) + (True,) * 6)


def offsets_beyond_noise(r: dict) -> str:
    """'12 of 168 other offsets score lower than the centre beyond sampling noise, 0 higher'."""
    others = len(r["grid"]) ** 2 - 1
    return (f"{r['offsets_worse']} of its {others} other offsets score lower than the centre beyond sampling noise "
            f"and {r['offsets_better']} higher")


def invariance_findings(experiments: dict[str, Experiment], results: dict[str, dict]) -> list[Markdown]:
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
            f"{verdict}: trained at one position, the original CNN loses {_points(drop):.2f} percentage points in "
            f"the worst corner; trained on translated digits, its accuracy varies by {_points(spread):.2f} points "
            f"across the offsets, where sampling alone gives up to "
            f"{_points(results[moved['cnn']]['sampling_range_95']):.2f}. "
            f"Its tolerance to translation comes {source}."))
    for model in MODELS:
        label = MODEL_NAMES[model]
        if model in moved:
            r = results[moved[model]]
            found.append(Markdown(
                f"Trained on translated digits, the {label} ({code(moved[model])}) scores between "
                f"{percent(r['min'])} and {percent(max(max(row) for row in r['grid']))} across the offsets "
                f"(mean {percent(r['mean'])}): a range of {_points(r['measured_range']):.2f} points against "
                f"{_points(r['sampling_range']):.2f} expected from sampling alone "
                f"(95th percentile {_points(r['sampling_range_95']):.2f}); {offsets_beyond_noise(r)}."))
        if model in centre:
            r = results[centre[model]]
            drop = signed(r["worst_corner"] - r["centre"], "gains {}", "loses {}", "loses nothing")
            found.append(Markdown(
                f"Trained only at the centre, the {label} ({code(centre[model])}) scores {percent(r['centre'])} "
                f"with the digit at the centre and {percent(r['worst_corner'])} in the worst corner: it {drop} away "
                f"from where it was trained (mean over all offsets {percent(r['mean'])}); {offsets_beyond_noise(r)}."))
    losses = {n: r["centre"] - r["worst_corner"] for n, r in results.items() if experiments[n].placement == "centre"}
    if len(losses) > 1:
        best, worst = min(losses, key=losses.get), max(losses, key=losses.get)
        found.append(Markdown(
            f"Among the centre-trained models, {code(best)} ({MODEL_NAMES[experiments[best].model]}) keeps most of "
            f"its accuracy away from the centre ({_points(losses[best]):.2f} points lost in the worst corner) and "
            f"{code(worst)} ({MODEL_NAMES[experiments[worst].model]}) the least ({_points(losses[worst]):.2f} "
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


def mistakes(actual: np.ndarray, predicted: np.ndarray) -> dict:
    """How many test images are wrong, and the most frequent (true, predicted) pair: ties go to the lower digit."""
    counts = figures.confusion_matrix(actual, predicted)
    wrong = int(counts.sum() - np.trace(counts))
    np.fill_diagonal(counts, 0)
    true, read_as = np.unravel_index(np.argmax(counts), counts.shape)  # the first maximum
    most = {"digit": a_digit(true), "read_as": a_digit(read_as), "times": int(counts[true, read_as])}
    return {"wrong": wrong, "total": len(actual), "most_frequent": most if wrong else None}


# --- reading the other stages' outputs ---

def load_test_set(name: str) -> dict[str, np.ndarray]:
    """Only the test split: the training images are not shown and would cost most of the memory."""
    return datasets.load(name, only=("x_test", "y_test", "offsets_test", "max_offset"))


def read_curves(folder: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """DVCLive's per-epoch TSVs -> curves[metric][split] = (epoch from 1, values)."""
    curves = {}
    for metric in ("loss", "accuracy"):
        for split in ("train", "val"):
            tsv = folder / "plots" / "metrics" / split / f"{metric}.tsv"
            if tsv.exists():
                with files.reading(tsv, ValueError, UnicodeDecodeError):
                    with open(tsv, encoding="utf-8") as f:
                        columns = f.readline().strip().split("\t")
                    table = np.loadtxt(tsv, delimiter="\t", skiprows=1, ndmin=2)
                    if {"step", metric} - set(columns):
                        raise ValueError(f"columns {columns}, expected step and {metric}")
                epochs = table[:, columns.index("step")] + 1  # DVCLive counts steps from 0
                curves.setdefault(metric, {})[split] = (epochs, table[:, columns.index(metric)])
    if not curves:
        raise files.missing(folder / "plots" / "metrics")
    return curves


def conv_outputs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The 'conv' layer's output for uint8 images: (n, h, w, filters)."""
    # inputs[0], not input: a loaded Sequential model has the former only; one tensor, not a list, to call it with.
    upto_conv = keras.Model(model.inputs[0], model.get_layer("conv").output)
    return keras.ops.convert_to_numpy(upto_conv(datasets.as_input(images), training=False))


# --- the figures, and what the template says about them ---

def save_figure(name: str, fig) -> Path:
    """Saves the figure; its path as the report links it."""
    path = paths.figure_png(name)
    figures.save(fig, path)
    return path.relative_to(paths.REPORT_MD.parent)


def examples_section(test: dict[str, np.ndarray], digit_size: int, translated: bool) -> dict:
    x, y = test["x_test"], test["y_test"]
    h, w = x.shape[1:]
    if translated:
        fig = figures.examples(x, y, f"Translated examples ({h}×{w} canvas)", test["offsets_test"], digit_size)
    else:
        fig = figures.examples(x, y, f"MNIST examples ({h}×{w})")
    return {"figure": save_figure("examples_translated" if translated else "examples_mnist", fig), "height": h, "width": w,
            "max_offset": int(test["max_offset"])}


def experiment_section(exp: Experiment, metrics: dict, test: dict[str, np.ndarray]) -> dict:
    model = saved_models.load(paths.model(exp.name))
    has_conv = any(layer.name == "conv" for layer in model.layers)
    return {"exp": exp, "metrics": metrics, "model_name": MODEL_NAMES[exp.model], "data_label": _data_label(exp),
            "optimizer": OPTIMIZER_NAMES[exp.optimizer], "parameters": parameters_sentence(exp.name, model),
            "layers": layer_table(model),
            "weights": weights_figure(exp.name, model) if exp.model == "linear" else None,
            "conv": conv_figures(exp.name, model, test) if has_conv else None,
            **outcome_figures(exp.name, test)}


def weights_figure(name: str, model: keras.Model) -> Path:
    kernel = keras.ops.convert_to_numpy(model.get_layer("weights").kernel)
    return save_figure(f"weights_{name}", figures.weight_maps(kernel, model.input_shape[1:3], f"Weight maps of {name}"))


def conv_figures(name: str, model: keras.Model, test: dict[str, np.ndarray]) -> dict:
    conv = model.get_layer("conv")
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    kh, kw, _, n = kernel.shape
    x, label = test["x_test"], a_digit(int(test["y_test"][TEST_DIGIT]))
    maps = conv_outputs(model, x[TEST_DIGIT:TEST_DIGIT + 1])[0]
    return {
        "kernels": save_figure(f"cnn_kernels_{name}",
                          figures.conv_kernels(kernel, f"The {n} learned {kh}×{kw} kernels of {name}'s conv layer")),
        "feature_maps": save_figure(f"cnn_feature_maps_{name}",
                               figures.feature_maps(x[TEST_DIGIT], maps,
                                                    f"Feature maps of {name}'s conv layer for one test digit",
                                                    f"test image {TEST_DIGIT} ({label})")),
        "filters": n, "kernel_size": f"{kh}×{kw}", "test_image": TEST_DIGIT, "digit": label,
        "activation": conv.activation.__name__,
    }


def outcome_figures(name: str, test: dict[str, np.ndarray]) -> dict:
    """How training went and what the model gets wrong."""
    curves = read_curves(paths.training_log(name))
    p = predictions.read(paths.predictions(name), test["y_test"].astype(np.int64))
    actual, predicted, confidence = p["actual"], p["predicted"], p["confidence"]
    picked = figures.most_confident_errors(actual, predicted, confidence, ERRORS_SHOWN)
    return {
        "curves": save_figure(f"curves_{name}", figures.training_curves(curves, f"Training curves of {name}")),
        "confusion": save_figure(f"confusion_{name}", figures.confusion(actual, predicted, f"Confusion matrix of {name}")),
        "errors": save_figure(f"errors_{name}",
                         figures.confident_errors(test["x_test"], actual, predicted, confidence,
                                                  f"The most confidently wrong test images of {name}", ERRORS_SHOWN)),
        "mistakes": mistakes(actual, predicted),
        "errors_shown": len(picked),
        "least_confidence": confidence[picked[-1]] if len(picked) else None,
    }


def invariance_section(experiments: dict[str, Experiment], results: dict[str, dict]) -> dict:
    first = next(iter(results.values()))
    grids = invariance_grids(experiments, results)
    low, high = statistics.wilson(round(0.99 * first["test_digits"]), first["test_digits"])
    return {
        "test_digits": first["test_digits"], "offsets": len(first["grid"]), "canvas": first["canvas"],
        "near_99": _points((high - low) / 2),
        "maps": save_figure("invariance_maps", figures.invariance_maps(grids, "Test accuracy by the digit's offset")),
        "distance": save_figure("invariance_distance",
                           figures.accuracy_by_distance(grids, "Accuracy against distance from the centre")),
        "table": invariance_table(experiments, results),
        "findings": invariance_findings(experiments, results),
    }


def build(p: params.Params) -> dict:
    """The template's context: every number, table, figure and finding of the report."""
    metrics = {name: files.read_json(paths.metrics(name), required=("test_accuracy_low", "test_accuracy_high"))
               for name in p.experiments}
    comparisons = files.read_json(paths.COMPARISONS, required=("pairs", "original"))
    tests = {name: load_test_set(name) for name in ("centred", "translated")}
    digit_size = tests["centred"]["x_test"].shape[1]
    invariance = {name: files.read_json(paths.invariance(name)) for name in p.invariance.experiments}
    seeds = {name: files.read_json(paths.seeds(name), required=("runs", "mean", "sd", "min", "max", "test_sd"))
             for name in p.experiments}
    accuracy = {name: m["test_accuracy"] for name, m in metrics.items()}
    return {
        "results": results_table(p.experiments, metrics, comparisons["original"]),
        "test_digits": comparisons["test_digits"],
        "digit_size": digit_size,
        "centred": examples_section(tests["centred"], digit_size, translated=False),
        "translated": examples_section(tests["translated"], digit_size, translated=True),
        "experiments": {data: [experiment_section(exp, metrics[exp.name], tests[data])
                               for exp in p.experiments.values() if exp.data == data]
                        for data in ("centred", "translated")},
        "discussion": discussion(p.experiments, metrics, comparisons),
        "seeds": seed_table(seeds),
        "claims": claims_table(p.experiments, accuracy, comparisons, seeds),
        "invariance": invariance_section(p.experiments, invariance) if invariance else None,
    }


def main() -> None:
    document.write(document.render("report.md.j2", **build(params.load())), paths.REPORT_MD, paths.REPORT_HTML)
    print(f"report: figures in {paths.FIGURES}, wrote {paths.REPORT_MD} and {paths.REPORT_HTML}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
