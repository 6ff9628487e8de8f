"""Stage `report`: the figures, reports/report.md and a self-contained reports/index.html.

    python -m stages.report

Reads what the other stages wrote for every experiment in params.yaml: test metrics, the compare
stage's significance tests, training logs, predictions, saved models, the invariance grids and the
datasets. This module reads them and draws the figures (figures.py); the tables and the sentences whose
wording follows the results are findings.py's; the prose around them is the template templates/report.md.j2.
The page is made from that Markdown, so both say the same thing, and the same inputs give byte-identical
output (no dates).
"""

import sys
from pathlib import Path

import keras
import numpy as np

from stages import (
    cli,
    datasets,
    document,
    figures,
    files,
    findings,
    params,
    paths,
    predictions,
    registry,
    saved_models,
    schemas,
    statistics,
)
from stages.kinds import KINDS
from stages.params import Experiment

TEST_DIGIT = 0  # the test image whose feature maps are shown
ERRORS_SHOWN = 12


# --- reading the other stages' outputs ---

def load_test_set(of: str, name: str) -> dict[str, np.ndarray]:
    """Only the test split: the training images are not shown and would cost most of the memory."""
    return datasets.load(of, name, only=("x_test", "y_test", "offsets_test", "max_offset"))


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

# The figures drawn for the report being built, kept until they are written with its page (see main).
drawn: dict[Path, bytes] = {}


def save_figure(name: str, fig) -> Path:
    """Draws the figure, to be written with the report; its path as the report links it."""
    path = paths.figure_png(name)
    drawn[path] = figures.png(fig)
    return path.relative_to(paths.REPORT_MD.parent)


def class_names(entry: registry.Dataset) -> tuple[str, ...] | None:
    """The names the example figures give labels; None for digits, which say "label 7" as they always did."""
    return None if entry.classes == tuple("0123456789") else entry.classes


def examples_section(test: dict[str, np.ndarray], dataset: str, digit_size: int, translated: bool) -> dict:
    x, y = test["x_test"], test["y_test"]
    h, w = x.shape[1:]
    entry = registry.entry(dataset)
    names = class_names(entry)
    if translated:
        fig = figures.examples(x, y, f"Translated {entry.label} examples ({h}×{w} canvas)", test["offsets_test"],
                               digit_size, names=names)
    else:
        fig = figures.examples(x, y, f"{entry.label} examples ({h}×{w})", names=names)
    name = f"examples_translated_{dataset}" if translated else f"examples_{dataset}"
    return {"figure": save_figure(name, fig), "height": h, "width": w, "max_offset": int(test["max_offset"])}


def experiment_section(exp: Experiment, metrics: dict, test: dict[str, np.ndarray]) -> dict:
    model = saved_models.load(paths.model(exp.name), exp.model, (*test["x_test"].shape[1:], 1))
    shown = KINDS[exp.model].figures
    classes = registry.entry(exp.dataset).classes
    return {"exp": exp, "metrics": metrics, "model_name": findings.MODEL_NAMES[exp.model],
            "data_label": findings.data_label(exp), "optimizer": findings.OPTIMIZER_NAMES[exp.optimizer],
            "item": registry.entry(exp.dataset).item,
            "parameters": findings.parameters_sentence(exp.name, model), "layers": findings.layer_table(model),
            "weights": weights_figure(exp.name, model) if "weights" in shown else None,
            "conv": conv_figures(exp.name, model, test, classes) if "conv" in shown else None,
            **outcome_figures(exp.name, test, classes)}


def weights_figure(name: str, model: keras.Model) -> Path:
    kernel = keras.ops.convert_to_numpy(model.get_layer("weights").kernel)
    return save_figure(f"weights_{name}", figures.weight_maps(kernel, model.input_shape[1:3], f"Weight maps of {name}"))


def conv_figures(name: str, model: keras.Model, test: dict[str, np.ndarray], classes: tuple[str, ...]) -> dict:
    conv = model.get_layer("conv")
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    kh, kw, _, n = kernel.shape
    x, label = test["x_test"], findings.a_class(classes[int(test["y_test"][TEST_DIGIT])])
    maps = conv_outputs(model, x[TEST_DIGIT:TEST_DIGIT + 1])[0]
    return {
        "kernels": save_figure(f"cnn_kernels_{name}",
                          figures.conv_kernels(kernel, f"The {n} learned {kh}×{kw} kernels of {name}'s conv layer")),
        "feature_maps": save_figure(f"cnn_feature_maps_{name}",
                               figures.feature_maps(x[TEST_DIGIT], maps,
                                                    f"Feature maps of {name}'s conv layer for one test image",
                                                    f"test image {TEST_DIGIT} ({label})")),
        "filters": n, "kernel_size": f"{kh}×{kw}", "test_image": TEST_DIGIT, "digit": label,
        "activation": conv.activation.__name__,
    }


def outcome_figures(name: str, test: dict[str, np.ndarray], classes: tuple[str, ...]) -> dict:
    """How training went and what the model gets wrong."""
    curves = read_curves(paths.training_log(name))
    p = predictions.read(paths.predictions(name), test["y_test"].astype(np.int64))
    actual, predicted, confidence = p["actual"], p["predicted"], p["confidence"]
    picked = figures.most_confident_errors(actual, predicted, confidence, ERRORS_SHOWN)
    return {
        "curves": save_figure(f"curves_{name}", figures.training_curves(curves, f"Training curves of {name}")),
        "confusion": save_figure(f"confusion_{name}",
                                 figures.confusion(actual, predicted, f"Confusion matrix of {name}")),
        "errors": save_figure(f"errors_{name}",
                         figures.confident_errors(test["x_test"], actual, predicted, confidence,
                                                  f"The most confidently wrong test images of {name}", ERRORS_SHOWN)),
        "mistakes": findings.mistakes(actual, predicted, classes),
        "errors_shown": len(picked),
        "least_confidence": confidence[picked[-1]] if len(picked) else None,
    }


def invariance_section(dataset: str, experiments: dict[str, Experiment], results: dict[str, dict]) -> dict:
    first = next(iter(results.values()))
    item = registry.entry(dataset).item
    grids = findings.invariance_grids(experiments, results, item)
    low, high = statistics.wilson(round(0.99 * first["test_digits"]), first["test_digits"])
    return {
        "test_digits": first["test_digits"], "offsets": len(first["grid"]), "canvas": first["canvas"],
        "near_99": findings.points((high - low) / 2),
        "maps": save_figure(f"invariance_maps_{dataset}",
                            figures.invariance_maps(grids, f"Test accuracy by the {item}'s offset", item)),
        "distance": save_figure(f"invariance_distance_{dataset}",
                                figures.accuracy_by_distance(grids, "Accuracy against distance from the centre")),
        "consistency": save_figure(f"invariance_consistency_{dataset}", figures.consistency_by_distance(
            findings.consistency_curves(experiments, results, item),
            f"How often a moved {item} keeps its predicted class")),
        "consistency_finding": findings.consistency_finding(experiments, results, item=item),
        "table": findings.invariance_table(experiments, results, item),
        "findings": findings.invariance_findings(experiments, results, item),
    }


def dataset_section(dataset: str, p: params.Params, metrics: dict[str, dict], comparisons: dict,
                    seeds: dict[str, dict], invariance: dict[str, dict]) -> dict:
    """One dataset's part of the report: its examples, its experiments, their comparisons and invariance."""
    entry = registry.entry(dataset)
    # The benchmark protocols' experiments have a part of their own ("Published benchmarks").
    experiments = {name: exp for name, exp in findings.of_dataset(p.experiments, dataset).items()
                   if exp.data in ("centred", "translated")}
    tests = {data: load_test_set(dataset, data) for data in ("centred", "translated")}
    digit_size = tests["centred"]["x_test"].shape[1]
    accuracy = {name: metrics[name]["test_accuracy"] for name in experiments}
    measured = {name: result for name, result in invariance.items() if name in experiments}
    return {
        "name": dataset, "label": entry.label, "item": entry.item, "digit_size": digit_size,
        "test_images": len(tests["translated"]["y_test"]),
        "centred": examples_section(tests["centred"], dataset, digit_size, translated=False),
        "translated": examples_section(tests["translated"], dataset, digit_size, translated=True),
        "experiments": {data: [experiment_section(exp, metrics[exp.name], tests[data])
                               for exp in experiments.values() if exp.data == data]
                        for data in ("centred", "translated")},
        "discussion": findings.discussion(experiments, metrics, comparisons, entry.item),
        "claims": findings.claims_table(experiments, accuracy, comparisons,
                                        {name: seeds[name] for name in experiments}),
        "invariance": invariance_section(dataset, experiments, measured) if measured else None,
    }


def benchmarks_section(p: params.Params, metrics: dict[str, dict], comparisons: dict,
                       seeds: dict[str, dict]) -> list[dict]:
    """Each protocol some paper measured on: an example figure, the papers' errors and ours beside them."""
    found = findings.benchmarks(p.experiments, metrics, comparisons, seeds, p.translate.placings)
    for part in found:
        dataset = part["dataset"]
        entry = registry.entry(dataset)
        part |= {"label": entry.label, "item": entry.item, "figure": None}
        if part["data"] == "translated":  # its examples are in the dataset's own part
            continue
        test = load_test_set(dataset, part["data"])
        x, y = test["x_test"], test["y_test"]
        fig = figures.examples(x, y, f"{entry.label} test examples of {part['data']} ({x.shape[1]}×{x.shape[2]})",
                               test["offsets_test"], datasets.DIGIT, names=class_names(entry))
        part["figure"] = save_figure(f"examples_{part['data']}_{dataset}", fig)
    return found


def build(p: params.Params) -> dict:
    """The template's context: every number, table, figure and finding of the report."""
    metrics = {name: files.read_json(paths.metrics(name), schema=schemas.Metrics) for name in p.experiments}
    comparisons = files.read_json(paths.COMPARISONS, schema=schemas.Comparisons)
    invariance = {name: files.read_json(paths.invariance(name), schema=schemas.Invariance)
                  for name in p.invariance.experiments}
    seeds = {name: files.read_json(paths.seeds(name), schema=schemas.SeedStudy) for name in p.experiments}
    accuracy = {name: m["test_accuracy"] for name, m in metrics.items()}
    used = [d for d in p.datasets if findings.of_dataset(p.experiments, d)]
    labels = {d: registry.entry(d).label for d in used}
    return {
        "results": findings.results_table(p.experiments, metrics, comparisons["original"], labels),
        "pairs_tested": len(comparisons["pairs"]),
        "original_tested": sum("p_value" in test for test in comparisons["original"].values()),
        "datasets": [dataset_section(d, p, metrics, comparisons, seeds, invariance) for d in used],
        "seeds": findings.seed_table(seeds),
        "benchmarks": benchmarks_section(p, metrics, comparisons, seeds),
        "published_tested": len(comparisons["published"]),
        "across": findings.across_datasets(p.experiments, accuracy, comparisons, seeds, labels)
        if len(used) > 1 else None,
    }


def main() -> None:
    p = params.load()
    files.check_outputs(paths.FIGURES, paths.REPORT_MD, paths.REPORT_HTML)
    drawn.clear()
    markdown = document.render("report.md.j2", **build(p))
    # The figures, the Markdown and the page replaced together: a failure half-way leaves the last report whole.
    document.write(markdown, paths.REPORT_MD, paths.REPORT_HTML, images=drawn)
    files.remove_others(paths.FIGURES, keep=[path.relative_to(paths.FIGURES) for path in drawn])
    print(f"report: figures in {paths.FIGURES}, wrote {paths.REPORT_MD} and {paths.REPORT_HTML}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
