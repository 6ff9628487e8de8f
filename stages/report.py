"""Stage `report`: the figures, reports/report.md and a self-contained reports/index.html.

    python -m stages.report

Reads what the other stages wrote for every experiment in params.yaml: test metrics,
training logs, predictions, saved models, and the datasets. Both documents are rendered
from one list of blocks, so they always say the same thing. Every number in the text is
read from those files, and the same inputs give byte-identical output (no dates).
"""

import sys
from pathlib import Path

import keras
import numpy as np

from stages import cli, datasets, figures, files, params, paths
from stages.cli import StageError
from stages.document import Bullets, Heading, Image, Paragraph, Table, to_html, to_markdown
from stages.params import MODELS, Experiment

# What the 2018 notebook reported for the experiments it ran: (accuracy, as it put it).
ORIGINAL = {
    "linear_mnist": (0.92, "about 92%"),
    "linear_translated": (None, "not reported"),
    "mlp_translated": (0.9538, "95.38%"),
    "cnn_translated": (0.9651, "96.51%"),
}
MODEL_NAMES = {"linear": "linear model", "mlp": "MLP", "cnn": "CNN", "cnn_gap": "global-pooling CNN"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}
TEST_DIGIT = 0  # the test image whose feature maps are shown
ERRORS_SHOWN = 12
TITLE = "Translated MNIST: report"


# --- words and numbers: pure functions of the metrics, so tests feed them tiny dicts ---

def percent(fraction: float) -> str:
    return f"{fraction:.2%}"


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


def results_table(experiments: dict[str, Experiment], metrics: dict[str, dict]) -> Table:
    rows = []
    for name, exp in experiments.items():
        m = metrics[name]
        stopped = "" if m["stopped_by"] == "epochs" else f" ({m['stopped_by']})"
        rows.append((f"`{name}`", _data_label(exp), exp.model, percent(m["test_accuracy"]),
                     ORIGINAL.get(name, (None, "—"))[1], f"{m['epochs']} / {m['steps']:,}{stopped}",
                     f"{m['train_seconds']:,.1f} s", f"{m['params']:,}"))
    header = ("experiment", "data (placement)", "model", "test accuracy", "original (2018)", "epochs / steps",
              "training time", "parameters")
    return Table(header, tuple(rows), (False, False, False) + (True,) * 5)


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


def translation_costs(experiments: dict[str, Experiment], accuracy: dict[str, float]) -> list[str]:
    centred = _one_per_model(experiments, lambda e: e.data == "centred")
    moved = _one_per_model(experiments, _moved)
    found = []
    for model in centred.keys() & moved.keys():
        c, t, label = centred[model], moved[model], MODEL_NAMES[model]
        change = signed(accuracy[t] - accuracy[c], f"gains the {label} {{}}", f"costs the {label} {{}}",
                        f"leaves the {label}'s accuracy unchanged")
        found.append((MODELS.index(model), f"Translation {change}: `{c}` scores {percent(accuracy[c])} on centred "
                                           f"digits, `{t}` {percent(accuracy[t])} on translated ones."))
    return [sentence for _, sentence in sorted(found)]


def architecture_steps(experiments: dict[str, Experiment], accuracy: dict[str, float]) -> list[str]:
    """Each architecture against the next simpler one trained on the same kind of digits."""
    found = []
    for label, keep in (("centred", lambda e: e.data == "centred"), ("translated", _moved)):
        ladder = list(_one_per_model(experiments, keep).items())
        for (simple_model, simple), (model, name) in zip(ladder, ladder[1:]):
            change = signed(accuracy[name] - accuracy[simple], "gains {} over", "loses {} to", "matches")
            found.append(f"On {label} digits the {MODEL_NAMES[model]} (`{name}`, {percent(accuracy[name])}) "
                         f"{change} the {MODEL_NAMES[simple_model]} (`{simple}`, {percent(accuracy[simple])}).")
    return found


def centre_training(experiments: dict[str, Experiment], accuracy: dict[str, float]) -> list[str]:
    """Digits always at the centre in training, moved in the test: does the model cope?"""
    moved = _one_per_model(experiments, _moved)
    found = []
    for name, exp in experiments.items():
        if exp.data == "translated" and exp.placement == "centre" and exp.model in moved:
            other = moved[exp.model]
            change = signed(accuracy[name] - accuracy[other], "{} higher than", "{} lower than", "the same as")
            found.append(f"Trained only on digits at the canvas centre, the {MODEL_NAMES[exp.model]} (`{name}`) "
                         f"scores {percent(accuracy[name])} on the translated test set, {change} when trained on "
                         f"translated digits (`{other}`, {percent(accuracy[other])}).")
    return found


def versus_original(accuracy: dict[str, float]) -> list[str]:
    found = []
    for name, (reported, label) in ORIGINAL.items():
        if reported is not None and name in accuracy:
            change = signed(accuracy[name] - reported, "{} higher", "{} lower", "the same")
            found.append(f"`{name}` scores {percent(accuracy[name])} here against {label} in the original ({change}).")
    return found


WHY = ("What sets the models apart: the linear model and the MLP give every pixel position its own weights, so they "
       "must learn each digit anew at every position it may take; a convolution applies the same small kernels at "
       "every position, so what it learns in one place holds everywhere, and pooling then forgets part of where a "
       "feature was found. This is the argument of the original's discussion; the numbers above are this run's "
       "test of it.")


# --- "Is the CNN translation invariant?": the invariance stage's grids ---

REFERENCES = (
    "Kauderer-Abrams (2017), Quantifying translation-invariance in convolutional neural networks, arXiv:1801.01450: "
    "translation-sensitivity maps; most of a CNN's invariance comes from the training data, not the architecture.",
    "Azulay & Weiss (2019), Why do deep convolutional networks generalize so poorly to small image "
    "transformations?, JMLR 20: shifting the input by a pixel can change a CNN's output.",
    "Biscione & Bowers (2021), Convolutional neural networks are not invariant to translation, but they can learn "
    "to be, JMLR 22: CNNs fail on objects at untrained locations unless trained for it.",
    "Sabour, Frosst & Hinton (2017), Dynamic routing between capsules, NeurIPS: MNIST digits on a 40×40 canvas, "
    "99.22% for their baseline CNN.",
)


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


def invariance_table(experiments: dict[str, Experiment], results: dict[str, dict]) -> Table:
    rows = tuple((f"`{name}`", MODEL_NAMES[experiments[name].model], condition(experiments[name]),
                  percent(r["mean"]), percent(r["min"]), percent(r["centre"]), percent(r["worst_corner"]))
                 for name, r in results.items())
    return Table(("experiment", "model", "training", "mean", "minimum", "centre", "worst corner"), rows,
                 (False, False, False, True, True, True, True))


def invariance_findings(experiments: dict[str, Experiment], results: dict[str, dict]) -> list[str]:
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
        found.append(f"{verdict}: trained at one position, the original CNN loses {_points(drop):.2f} percentage "
                     f"points in the worst corner; trained on translated digits, its accuracy varies by "
                     f"{_points(spread):.2f} points across the offsets. Its tolerance to translation comes {source}.")
    for model in MODELS:
        label = MODEL_NAMES[model]
        if model in moved:
            r = results[moved[model]]
            found.append(f"Trained on translated digits, the {label} (`{moved[model]}`) scores between "
                         f"{percent(r['min'])} and {percent(max(max(row) for row in r['grid']))} across the "
                         f"offsets (mean {percent(r['mean'])}).")
        if model in centre:
            r = results[centre[model]]
            drop = signed(r["worst_corner"] - r["centre"], "gains {}", "loses {}", "loses nothing")
            found.append(f"Trained only at the centre, the {label} (`{centre[model]}`) scores {percent(r['centre'])} "
                         f"with the digit at the centre and {percent(r['worst_corner'])} in the worst corner: it "
                         f"{drop} away from where it was trained (mean over all offsets {percent(r['mean'])}).")
    losses = {n: r["centre"] - r["worst_corner"] for n, r in results.items() if experiments[n].placement == "centre"}
    if len(losses) > 1:
        best, worst = min(losses, key=losses.get), max(losses, key=losses.get)
        found.append(f"Among the centre-trained models, `{best}` ({MODEL_NAMES[experiments[best].model]}) keeps most "
                     f"of its accuracy away from the centre ({_points(losses[best]):.2f} points lost in the worst "
                     f"corner) and `{worst}` ({MODEL_NAMES[experiments[worst].model]}) the least "
                     f"({_points(losses[worst]):.2f} points).")
    return found


INVARIANCE_METHOD = (
    "Each trained model sees the same {digits:,} test digits placed at every one of the {size}×{size} offsets of "
    "the {canvas}×{canvas} canvas, and the maps show its accuracy at each offset (row offset down, column offset "
    "across; the centre offset is the middle cell). A translation-invariant model would draw a flat map. Each "
    "model is measured twice: trained on translated digits, and trained with every digit at the centre offset.")

INVARIANCE_CONTEXT = (
    "Convolution is translation equivariant: shift the input and the feature maps shift with it. Whether the "
    "prediction stays the same depends on what comes after: the original CNN's 2×2 pooling forgets position only "
    "within 2 pixels, and its dense layer has its own weights for every position of every feature map, just as the "
    "MLP has for every pixel; the global-pooling CNN takes the maximum of each feature over the whole canvas, so "
    "its classifier never sees where a feature was found. The literature this measurement repeats:")


def invariance_section(experiments: dict[str, Experiment], results: dict[str, dict]) -> list:
    first = next(iter(results.values()))
    size = len(first["grid"])
    grids = invariance_grids(experiments, results)
    return [
        Heading(2, "Is the CNN translation invariant?"),
        Paragraph(INVARIANCE_METHOD.format(digits=first["test_digits"], size=size, canvas=first["canvas"])),
        figure("invariance_maps", figures.invariance_maps(grids, "Test accuracy by the digit's offset"),
               "Accuracy by offset",
               "One map per model and training condition, on one colour scale from 0 to 1 (chance is 10%)."),
        figure("invariance_distance", figures.accuracy_by_distance(grids, "Accuracy against distance from the centre"),
               "Accuracy against distance from the centre",
               "Mean accuracy on each square ring of offsets around the central one (ring d: the digit shifted d "
               "pixels from the centre along the farther axis; the last ring touches the canvas edge); solid lines: trained on "
               "translated digits, dashed: trained at the centre."),
        invariance_table(experiments, results),
        Bullets(tuple(invariance_findings(experiments, results))),
        Paragraph(INVARIANCE_CONTEXT),
        Bullets(REFERENCES),
    ]


# --- speed: the scripts in benchmarks/ write what this section shows ---

RUN_NAMES = {"original": "original settings (Adam 1e-4, batch 50, fixed images)",
             "default": "this project's `cnn_translated` settings"}


def seconds_text(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:,.0f} s"


def speed_table(benchmark: dict) -> Table:
    rows = tuple((RUN_NAMES.get(name, name), f"{r['batch_size']}", "on" if r["onednn"] else "off",
                  seconds_text(r["seconds_to_target"]),
                  "—" if r["images_to_target"] is None else f"{r['images_to_target']:,}",
                  f"{r['images_per_second']:,.0f}", f"{r['gflops']:.1f}", percent(r["share_of_peak"]))
                 for name, r in benchmark["runs"].items())
    return Table(("run", "batch", "oneDNN", f"seconds to {percent(benchmark['target_accuracy'])}", "images seen",
                  "images / s", "GFLOP/s", "share of peak"), rows, (False, True, False, True, True, True, True, True))


def levers_table(levers: dict) -> Table:
    rows = tuple((name, f"{r['images_per_second']:,.0f}", f"{r['vs_default']:.2f}×") if "error" not in r
                 else (name, "failed", r["error"]) for name, r in levers["variants"].items())
    return Table(("variant (one change from the first row)", "images / s", "vs first row"), rows, (False, True, True))


def speed_findings(benchmark: dict) -> list[str]:
    original, default = benchmark["runs"]["original"], benchmark["runs"]["default"]
    findings = []
    if "speedup_to_target" in benchmark:
        bound = "at least " if benchmark["speedup_is_lower_bound"] else ""
        findings.append(f"This project's settings reach {percent(benchmark['target_accuracy'])} on the test set "
                        f"{bound}{benchmark['speedup_to_target']:.1f}× sooner than the original settings "
                        f"({seconds_text(default['seconds_to_target'])} of training against "
                        f"{'more than ' if bound else ''}{original['seconds_to_target'] or original['train_seconds']:,.0f} s).")
    for name, r in benchmark["runs"].items():
        if r["seconds_to_target"] is None:
            label = RUN_NAMES.get(name, name)
            findings.append(f"{label[0].upper()}{label[1:]}: did not reach "
                            f"{percent(benchmark['target_accuracy'])} within {r['train_seconds']:,.0f} s of training.")
    findings.append(
        f"Per image, the default path trains {default['images_per_second'] / original['images_per_second']:.1f}× "
        f"faster ({default['images_per_second']:,.0f} against {original['images_per_second']:,.0f} images/s): "
        f"{percent(default['share_of_peak'])} of this machine's matrix-product peak "
        f"({benchmark['matmul_peak_gflops']:.0f} GFLOP/s), against {percent(original['share_of_peak'])}.")
    return findings


def speed_section(benchmark: dict, levers: dict, pipeline: dict) -> list:
    curves = {RUN_NAMES.get(name, name).replace("`", ""): (np.array([c["train_seconds"] for c in r["curve"]]),
                                                           np.array([c["test_accuracy"] for c in r["curve"]]))
              for name, r in benchmark["runs"].items()}
    return [
        Heading(2, "Speed"),
        Paragraph(SPEED_METHOD.format(cores=benchmark["cores"], backend=benchmark["backend"],
                                      eval_images=benchmark["eval_images"],
                                      mflop=benchmark["cnn_training_mflop_per_image"])),
        speed_table(benchmark),
        figure("time_to_accuracy", figures.time_to_accuracy(curves, benchmark["target_accuracy"],
                                                             "The original CNN: test accuracy against training time"),
               "Test accuracy against training time",
               "Each point is one scoring of the full 10,000-image translated test set during training."),
        Bullets(tuple(speed_findings(benchmark))),
        Paragraph(LEVERS_METHOD.format(steps=levers["steps"], rounds=levers["rounds"])),
        levers_table(levers),
        Bullets(tuple(levers_findings(levers))),
        *pipeline_timing(pipeline),
    ]


def pipeline_timing(pipeline: dict) -> list:
    """benchmarks/pipeline_time.py: every stage of `dvc repro --force`, run alone."""
    stages = pipeline["stages"]
    scope = "The whole pipeline" if pipeline["complete"] else f"The first {len(stages)} stages of the pipeline"
    rows = tuple((f"`{s['stage']}`" + (" (timed again)" if s.get("retimed") else ""), f"{s['seconds']:,.1f} s",
                  f"{s['peak_mb']:,} MB") for s in stages)
    retimed = any(s.get("retimed") for s in stages)
    again = " Stages marked “timed again” come from a later run of just those stages." if retimed else ""
    return [Paragraph(f"{scope}, one stage at a time with `dvc repro --force` on {pipeline['cores']} cores "
                      f"(`benchmarks/pipeline_time.py`): {pipeline['seconds'] / 60:.1f} minutes; the largest peak "
                      f"memory of any stage was {max(s['peak_mb'] for s in stages):,} MB.{again}"),
            Table(("stage", "time", "peak memory"), rows, (False, True, True))]


def levers_findings(levers: dict) -> list[str]:
    """Sorts the variants by what they did to throughput, with a 5% band for noise."""
    measured = {name: r["vs_default"] for name, r in list(levers["variants"].items())[1:] if "error" not in r}
    groups = {"faster than the default": {n: v for n, v in measured.items() if v >= 1.05},
              "within 5% of the default (no measurable gain)": {n: v for n, v in measured.items() if 0.95 < v < 1.05},
              "slower than the default": {n: v for n, v in measured.items() if v <= 0.95}}
    return [f"{label.capitalize()}: " + ", ".join(f"{n} ({v:.2f}×)" for n, v in group.items()) + "."
            for label, group in groups.items() if group]


SPEED_METHOD = (
    "`benchmarks/cnn_speed.py` trains the notebook's CNN twice in one run on one machine ({cores} cores, Keras on "
    "{backend}) and scores the full translated test set every {eval_images:,} or so training images; the scoring "
    "time is not counted. The CNN costs {mflop:.1f} MFLOP per training image (forward and backward), which turns images "
    "per second into GFLOP/s; the share is of the fastest float32 matrix product measured on the same machine. The "
    "original settings run as plain Keras does here, on TensorFlow's default kernels (oneDNN off on this kind of "
    "CPU); this project's settings with the oneDNN kernels the stages switch on (what those alone are worth is the "
    "`oneDNN off` row below).")
LEVERS_METHOD = (
    "`benchmarks/cnn_levers.py` measures what each setting alone does to training throughput ({steps} timed steps "
    "on random images, each variant in a fresh process; accuracy is not measured there). The variants ran in turn "
    "{rounds} times over, as the machine's speed drifts: each figure is the median of its rounds, each ratio the "
    "median of its ratios to the first row within a round.")


def discussion(experiments: dict[str, Experiment], metrics: dict[str, dict]) -> list:
    accuracy = {name: metrics[name]["test_accuracy"] for name in experiments}
    best = max(accuracy, key=accuracy.get)
    findings = [
        f"The most accurate experiment is `{best}` with {percent(accuracy[best])} "
        f"({metrics[best]['errors']:,} test errors).",
        *translation_costs(experiments, accuracy),
        *architecture_steps(experiments, accuracy),
        *centre_training(experiments, accuracy),
        *versus_original(accuracy),
    ]
    return [Bullets(tuple(findings)), Paragraph(WHY)]


def layer_table(model: keras.Model) -> Table:
    """What the original printed as its variable list: each layer, its weights and their sizes."""
    rows = []
    for layer in model.layers:
        try:
            shape = "×".join(str(d) for d in layer.output.shape[1:])
        except (AttributeError, ValueError):
            shape = ""
        weights = ", ".join(f"{w.name} {'×'.join(str(d) for d in w.shape)}" for w in layer.weights)
        rows.append((f"`{layer.name}`", type(layer).__name__, shape, weights or "—", f"{layer.count_params():,}"))
    rows.append(("total", "", "", "", f"{model.count_params():,}"))
    return Table(("layer", "type", "output shape", "weights", "parameters"), tuple(rows),
                 (False, False, False, False, True))


def parameters_sentence(name: str, model: keras.Model) -> str:
    total = model.count_params()
    largest = max(model.layers, key=lambda layer: layer.count_params())
    if largest.count_params() == total:
        return f"`{name}` has {total:,} parameters, all in its layer `{largest.name}` ({type(largest).__name__})."
    return (f"`{name}` has {total:,} parameters; its largest layer, `{largest.name}` "
            f"({type(largest).__name__}), holds {largest.count_params() / total:.1%} of them.")


def curves_caption(metrics: dict) -> str:
    stop = "the planned number of epochs" if metrics["stopped_by"] == "epochs" else f"`{metrics['stopped_by']}`"
    return (f"Loss and accuracy after each epoch on the training and validation sets. Training ran "
            f"{metrics['epochs']} epochs ({metrics['steps']:,} steps, {metrics['train_seconds']:,.1f} s) and "
            f"was stopped by {stop}.")


def confusion_caption(actual: np.ndarray, predicted: np.ndarray) -> str:
    counts = figures.confusion_matrix(actual, predicted)
    wrong = int(counts.sum() - np.trace(counts))
    text = (f"Rows are true digits, columns predictions: {wrong:,} of {int(counts.sum()):,} test images are off "
            "the diagonal.")
    if wrong:
        np.fill_diagonal(counts, 0)
        true, pred = np.unravel_index(np.argmax(counts), counts.shape)  # first maximum: ties go to the lower digit
        text += (f" The most frequent mistake is {a_digit(true)} read as {a_digit(pred)} "
                 f"({counts[true, pred]:,} times).")
    return text


def errors_caption(actual: np.ndarray, predicted: np.ndarray, confidence: np.ndarray) -> str:
    picked = figures.most_confident_errors(actual, predicted, confidence, ERRORS_SHOWN)
    if not len(picked):
        return "The model made no mistake on the test set."
    return (f"The {len(picked)} wrong answers the model was surest of, most confident first; even the last of them "
            f"had {confidence[picked[-1]]:.1%} of the probability on the wrong digit.")


# --- reading the other stages' outputs ---

def required_inputs(p: params.Params) -> list[Path]:
    needed = [paths.dataset("centred"), paths.dataset("translated")]
    for name in p.experiments:
        needed += [paths.metrics(name), paths.predictions(name), paths.model(name), paths.training_log(name)]
    benchmarks = [paths.BENCHMARK, paths.BENCHMARK_LEVERS, paths.BENCHMARK_PIPELINE]
    return needed + [paths.invariance(name) for name in p.invariance.experiments] + benchmarks


def load_test_set(name: str) -> dict[str, np.ndarray]:
    """Only the test split: the training images are not shown and would cost most of the memory."""
    with np.load(paths.dataset(name)) as npz:
        return {key: npz[key] for key in ("x_test", "y_test", "offsets_test", "max_offset")}


def read_curves(folder: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """DVCLive's per-epoch TSVs -> curves[metric][split] = (epoch from 1, values)."""
    curves = {}
    for metric in ("loss", "accuracy"):
        for split in ("train", "val"):
            tsv = folder / "plots" / "metrics" / split / f"{metric}.tsv"
            if tsv.exists():
                with open(tsv, encoding="utf-8") as f:
                    columns = f.readline().strip().split("\t")
                table = np.loadtxt(tsv, delimiter="\t", skiprows=1, ndmin=2)
                if len(table) and {"step", metric} <= set(columns):
                    epochs = table[:, columns.index("step")] + 1  # DVCLive counts steps from 0
                    curves.setdefault(metric, {})[split] = (epochs, table[:, columns.index(metric)])
    if not curves:
        raise StageError(f"{folder}: no training curves under plots/metrics/{{train,val}}/{{loss,accuracy}}.tsv")
    return curves


def read_predictions(path: Path, labels: np.ndarray) -> dict[str, np.ndarray]:
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip()
    if header != "index,actual,predicted,confidence":
        raise StageError(f"{path}: header is '{header}', expected 'index,actual,predicted,confidence'")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    actual = table[:, 1].astype(np.int64)
    if len(actual) != len(labels) or not np.array_equal(actual, labels):
        raise StageError(f"{path}: does not match the test set's labels; run the evaluate stage again")
    return {"actual": actual, "predicted": table[:, 2].astype(np.int64), "confidence": table[:, 3]}


def conv_outputs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The 'conv' layer's output for uint8 images: (n, h, w, filters)."""
    # inputs[0], not input: a loaded Sequential model has the former only; one tensor, not a list, to call it with.
    upto_conv = keras.Model(model.inputs[0], model.get_layer("conv").output)
    return keras.ops.convert_to_numpy(upto_conv(datasets.as_input(images), training=False))


# --- the sections ---

def figure(name: str, fig, alt: str, caption: str) -> Image:
    path = paths.figure(name)
    figures.save(fig, path)
    return Image(path, alt, caption)


def data_section(label: str, test: dict[str, np.ndarray], digit_size: int) -> list:
    x, y = test["x_test"], test["y_test"]
    h, w = x.shape[1:]
    if label == "centred":
        return [Heading(2, "Centred digits"), figure(
            "examples_mnist", figures.examples(x, y, f"MNIST examples ({h}×{w})"), "MNIST examples",
            f"The first nine test digits, {h}×{w} pixels, with their labels.")]
    return [Heading(2, "Translated digits"), figure(
        "examples_translated",
        figures.examples(x, y, f"Translated examples ({h}×{w} canvas)", test["offsets_test"], digit_size),
        "Translated examples",
        f"The first nine translated test digits on the {h}×{w} canvas; the dashed box is where the {digit_size}×"
        f"{digit_size} digit was placed, 0 to {int(test['max_offset'])} pixels from the top left on each axis.")]


def experiment_section(exp: Experiment, metrics: dict, test: dict[str, np.ndarray]) -> list:
    model = keras.saving.load_model(paths.model(exp.name), compile=False)
    blocks = [
        Heading(3, f"`{exp.name}`: {MODEL_NAMES[exp.model]}"),
        Paragraph(f"Trained on {_data_label(exp)} digits with {OPTIMIZER_NAMES[exp.optimizer]} (learning rate "
                  f"{exp.learning_rate:g}, {exp.schedule} schedule, batch size {exp.batch_size}); test accuracy "
                  f"{percent(metrics['test_accuracy'])}, {metrics['errors']:,} errors."),
        Paragraph(parameters_sentence(exp.name, model)),
        layer_table(model),
    ]
    if exp.model == "linear":
        blocks.append(weights_figure(exp.name, model))
    if any(layer.name == "conv" for layer in model.layers):
        blocks += conv_figures(exp.name, model, test)
    return blocks + outcome_figures(exp.name, metrics, test)


def weights_figure(name: str, model: keras.Model) -> Image:
    kernel = keras.ops.convert_to_numpy(model.get_layer("weights").kernel)
    return figure(f"weights_{name}", figures.weight_maps(kernel, model.input_shape[1:3], f"Weight maps of {name}"),
                  f"Weight maps of {name}",
                  "One map per digit: how much each pixel counts for (red) or against (blue) that digit, on one "
                  "scale shared by all ten maps (clipped at the 99th percentile of |weight|, so the few extreme "
                  "weights of rarely used border pixels do not wash out the rest).")


def conv_figures(name: str, model: keras.Model, test: dict[str, np.ndarray]) -> list[Image]:
    conv = model.get_layer("conv")
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    kh, kw, _, n = kernel.shape
    x, label = test["x_test"], a_digit(int(test["y_test"][TEST_DIGIT]))
    maps = conv_outputs(model, x[TEST_DIGIT:TEST_DIGIT + 1])[0]
    return [
        figure(f"cnn_kernels_{name}", figures.conv_kernels(kernel, f"The {n} learned {kh}×{kw} kernels of "
                                                                   f"{name}'s conv layer"),
               f"Kernels of {name}",
               f"The layer's {n} filters: {kh}×{kw} kernels of weights learned in training, on one scale centred "
               "at zero."),
        figure(f"cnn_feature_maps_{name}",
               figures.feature_maps(x[TEST_DIGIT], maps, f"Feature maps of {name}'s conv layer for one test digit",
                                    f"test image {TEST_DIGIT} ({label})"),
               f"Feature maps of {name}",
               f"What the {n} kernels make of test image {TEST_DIGIT} ({label}): each map is one kernel's response "
               f"at every position, after the layer's {conv.activation.__name__} activation. The original titled "
               "such maps 'filters'; the filters are the kernels above."),
    ]


def outcome_figures(name: str, metrics: dict, test: dict[str, np.ndarray]) -> list[Image]:
    """How training went and what the model gets wrong."""
    curves = read_curves(paths.training_log(name))
    p = read_predictions(paths.predictions(name), test["y_test"].astype(np.int64))
    actual, predicted, confidence = p["actual"], p["predicted"], p["confidence"]
    return [
        figure(f"curves_{name}", figures.training_curves(curves, f"Training curves of {name}"),
               f"Training curves of {name}", curves_caption(metrics)),
        figure(f"confusion_{name}", figures.confusion(actual, predicted, f"Confusion matrix of {name}"),
               f"Confusion matrix of {name}", confusion_caption(actual, predicted)),
        figure(f"errors_{name}",
               figures.confident_errors(test["x_test"], actual, predicted, confidence,
                                        f"The most confidently wrong test images of {name}", ERRORS_SHOWN),
               f"Confident errors of {name}", errors_caption(actual, predicted, confidence)),
    ]


def build(p: params.Params) -> list:
    missing = [path for path in required_inputs(p) if not path.exists()]
    if missing:
        made_by = {paths.BENCHMARK: "benchmarks/cnn_speed.py", paths.BENCHMARK_LEVERS: "benchmarks/cnn_levers.py",
                   paths.BENCHMARK_PIPELINE: "benchmarks/pipeline_time.py"}
        raise StageError("missing inputs: " + ", ".join(
            f"{path} (run {made_by[path]})" if path in made_by else f"{path} (run `dvc repro` to make it)"
            for path in missing))
    metrics = {name: files.read_json(paths.metrics(name)) for name in p.experiments}
    tests = {name: load_test_set(name) for name in ("centred", "translated")}
    digit_size = tests["centred"]["x_test"].shape[1]
    blocks = [
        Heading(1, TITLE),
        Paragraph("The 2018 translated-MNIST homework (TensorFlow 1), rebuilt as a DVC pipeline. Generated by "
                  "`python -m stages.report`: every number below is read from the pipeline's outputs "
                  "(`reports/metrics`, `reports/training`, `reports/predictions`, `data/models`)."),
        Heading(2, "Results"),
        results_table(p.experiments, metrics),
        Paragraph("Test accuracy is measured on the test set of each experiment's data; the original column is what "
                  "the 2018 notebook printed for the same experiment. Placement says where the training digits sat: "
                  "fixed, where the translate stage put them; fresh, a new random place every epoch; centre, always "
                  "the middle of the canvas. Training time is the train stage's wall-clock time."),
    ]
    # The notebook's order: centred digits and their model first, then the translated ones.
    for data in ("centred", "translated"):
        blocks += data_section(data, tests[data], digit_size)
        for exp in p.experiments.values():
            if exp.data == data:
                blocks += experiment_section(exp, metrics[exp.name], tests[data])
    blocks += [Heading(2, "Discussion"), *discussion(p.experiments, metrics)]
    if p.invariance.experiments:
        results = {name: files.read_json(paths.invariance(name)) for name in p.invariance.experiments}
        blocks += invariance_section(p.experiments, results)
    blocks += speed_section(*(files.read_json(path) for path in (paths.BENCHMARK, paths.BENCHMARK_LEVERS,
                                                                  paths.BENCHMARK_PIPELINE)))
    return blocks


def main() -> None:
    blocks = build(params.load())
    with files.atomic_path(paths.REPORT_MD) as tmp:
        tmp.write_text(to_markdown(blocks, paths.REPORT_MD.parent), encoding="utf-8")
    with files.atomic_path(paths.REPORT_HTML) as tmp:
        tmp.write_text(to_html(blocks), encoding="utf-8")
    shown = sum(isinstance(b, Image) for b in blocks)
    print(f"report: {shown} figures in {paths.FIGURES}, wrote {paths.REPORT_MD} and {paths.REPORT_HTML}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
