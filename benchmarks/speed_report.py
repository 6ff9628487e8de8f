"""The speed page, reports/speed.md and reports/speed.html, from what the other modules here measured.

    python -m benchmarks.speed_report

Reads reports/benchmarks/cnn_speed.json, cnn_recipe.json, cnn_levers.json and pipeline_time.json (each
written by the module of the same name) and draws reports/benchmarks/time_to_accuracy.png and
recipe_accuracy.png (benchmarks/figures.py). The last stage of the benchmarks pipeline (benchmarks/dvc.yaml).
Rendered as the main report is (stages/document.py), from the template benchmarks/templates/speed.md.j2;
the same inputs give byte-identical output.
"""

import sys
from pathlib import Path

import jinja2
import numpy as np

from benchmarks import figures, paths
from stages import cli, document, files, statistics
from stages import figures as report_figures
from stages.document import Markdown, Table, code, interval, md, percent

SMALL_EXPERIMENT = "cnn_bn_translated"  # cnn_recipe.SMALL, without importing Keras here
TEST_IMAGES = 10_000  # cnn_speed and cnn_recipe score the whole MNIST test set
# The report's Markdown settings, with this folder's templates (the page around it is the report's page.html.j2).
TEMPLATES = document.MARKDOWN.overlay(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"))

RUN_NAMES = {"original": Markdown("original settings (Adam 1e-4, batch 50, fixed images)"),
             "default": Markdown("this project's `cnn_translated` settings"),
             "half": Markdown("half the images: fewer epochs, smaller batches")}


def run_name(name: str) -> Markdown:
    return RUN_NAMES.get(name) or md(name)


def seconds_text(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:,.0f} s"


def speed_table(benchmark: dict) -> Table:
    rows = tuple((run_name(name), f"{r['batch_size']}", "on" if r["onednn"] else "off",
                  seconds_text(r["seconds_to_target"]),
                  "—" if r["images_to_target"] is None else f"{r['images_to_target']:,}",
                  f"{r['images_per_second']:,.0f}", f"{r['gflops']:.1f}", percent(r["share_of_peak"]))
                 for name, r in benchmark["runs"].items())
    return Table(("run", "batch", "oneDNN", f"seconds to {percent(benchmark['target_accuracy'])}", "images seen",
                  "images / s", "GFLOP/s", "share of peak"), rows, (False, True, False, True, True, True, True, True))


def speed_findings(benchmark: dict) -> list[Markdown]:
    original, default = benchmark["runs"]["original"], benchmark["runs"]["default"]
    target = percent(benchmark["target_accuracy"])
    findings = []
    if "speedup_to_target" in benchmark:
        bound = "at least " if benchmark["speedup_is_lower_bound"] else ""
        findings.append(Markdown(
            f"This project's settings reach {target} on the test set {bound}{benchmark['speedup_to_target']:.1f}× "
            f"sooner than the original settings ({seconds_text(default['seconds_to_target'])} of training against "
            f"{'more than ' if bound else ''}{original['seconds_to_target'] or original['train_seconds']:,.0f} s)."))
    for name, r in benchmark["runs"].items():
        label = run_name(name)
        label = f"{label[0].upper()}{label[1:]}"
        reached = next((c["test_accuracy"] for c in r["curve"] if c["test_accuracy"] >= benchmark["target_accuracy"]),
                       None)
        if reached is not None:
            low, high = statistics.wilson(round(reached * TEST_IMAGES), TEST_IMAGES)
            findings.append(Markdown(
                f"{label}: first scored {percent(reached)}, at or above {target} "
                f"(95% interval {interval(low, high)} on {TEST_IMAGES:,} test images); a crossing one scoring "
                f"earlier or later is within test-set noise, so the time to {target} is good to about one scoring."))
        if r["seconds_to_target"] is None:
            findings.append(Markdown(f"{label}: did not reach {target} within "
                                     f"{r['train_seconds']:,.0f} s of training."))
    findings.append(Markdown(
        f"Per image, the default path trains {default['images_per_second'] / original['images_per_second']:.1f}× "
        f"faster ({default['images_per_second']:,.0f} against {original['images_per_second']:,.0f} images/s): "
        f"{percent(default['share_of_peak'])} of this machine's matrix-product peak "
        f"({benchmark['matmul_peak_gflops']:.0f} GFLOP/s), against {percent(original['share_of_peak'])}."))
    return findings


def recipe_table(recipe: dict) -> Table:
    target = percent(recipe["target_accuracy"])
    rows = []
    for name, r in recipe["recipes"].items():
        reached = ", ".join("—" if run["images_to_target"] is None else f"{run['images_to_target']:,}"
                            for run in r["runs"])
        finals = ", ".join(percent(run["final_accuracy"]) for run in r["runs"])
        rows.append((run_name(name), f"{r['epochs']} × {r['batch_size']}", f"{r['learning_rate']:g}",
                     f"{r['images']:,}", finals, Markdown(f"**{percent(r['mean_final_accuracy'])}**"), reached,
                     f"{r['mean_train_seconds']:,.0f} s"))
    return Table(("recipe", "epochs × batch", "learning rate", "images seen", "test accuracy, per seed", "mean",
                  f"images to {target}, per seed", "training time (mean)"), tuple(rows),
                 (False, True, True, True, True, True, True, True))


def recipe_findings(recipe: dict) -> list[Markdown]:
    default, half = recipe["recipes"]["default"], recipe["recipes"]["half"]
    target, seeds = percent(recipe["target_accuracy"]), recipe["seeds"]
    verdict = "reaches" if half["reaches_target"] else "does not reach"
    findings = [Markdown(
        f"With {recipe['image_ratio']:.0%} of the default's training images ({half['images']:,} against "
        f"{default['images']:,}), the half recipe {verdict} {target}: its mean over {seeds} seeds is "
        f"{percent(half['mean_final_accuracy'])}, against {percent(default['mean_final_accuracy'])} for the default, "
        f"in {half['mean_train_seconds'] / default['mean_train_seconds']:.2f}× the training time.")]
    labels = {"default": "the default", "half": "the half recipe", "small": "the small model"}
    for name, r in recipe["recipes"].items():
        finals = [run["final_accuracy"] for run in r["runs"]]
        low, _ = statistics.wilson(round(min(finals) * TEST_IMAGES), TEST_IMAGES)
        _, high = statistics.wilson(round(max(finals) * TEST_IMAGES), TEST_IMAGES)
        label = labels.get(name, name)
        findings.append(Markdown(
            f"The seeds of {label} scored {percent(min(finals))} to {percent(max(finals))}; with each score's own "
            f"test-set noise, 95% intervals from {percent(low)} to {percent(high)}."))
    small = recipe["recipes"].get("small")
    if small is not None:
        findings.append(small_finding(default, small, target))
    # The default's own runs, scored when they had seen as many images as the half recipe in all
    at_half = [c["test_accuracy"] for run in default["runs"] for c in run["curve"] if c["images"] == half["images"]]
    if len(at_half) == len(default["runs"]):
        findings.append(Markdown(
            f"After {half['images']:,} images, half-way through its schedule, the default scored "
            f"{percent(float(np.mean(at_half)))} on the mean of its seeds; the half recipe, its learning rate "
            f"annealed to zero by then, {percent(half['mean_final_accuracy'])}."))
    return findings


def small_finding(default: dict, small: dict, target: str) -> Markdown:
    """How much sooner the small model got to the target than the default, by mean training seconds and by
    images seen. A run of the default that never got there counts its whole run: the ratio is then a bound."""
    seconds = [run["seconds_to_target"] for run in small["runs"]]
    if None in seconds:
        how = "not in every run, so no ratio is given"
    else:
        missed = [str(run["seed"]) for run in default["runs"] if run["seconds_to_target"] is None]
        bound = "at least " if missed else ""
        by_seconds = (np.mean([run["seconds_to_target"] or run["train_seconds"] for run in default["runs"]]) /
                      np.mean(seconds))
        by_images = (np.mean([run["images_to_target"] or run["images"] for run in default["runs"]]) /
                     np.mean([run["images_to_target"] for run in small["runs"]]))
        how = (f"{bound}{by_seconds:.2f}× sooner than the default by mean training seconds, {bound}{by_images:.2f}× "
               "by images seen")
        if missed:
            how += (f" (the default's seed {' and '.join(missed)} never got there; each such run counts as its whole "
                    "training)")
    return Markdown(f"The small model ({small.get('model', 'cnn_bn')}, {code(SMALL_EXPERIMENT)}) reached {target} "
                    f"{how}; per seed after {', '.join('—' if s is None else f'{s:,.0f} s' for s in seconds)}.")


def recipe_figure(recipe: dict) -> Path:
    """Every run's test accuracy against its training time; the page's link to the saved figure."""
    curves = {f"{name}, seed {run['seed']}": (np.array([c["train_seconds"] for c in run["curve"]]),
                                               np.array([c["test_accuracy"] for c in run["curve"]]))
              for name, r in recipe["recipes"].items() for run in r["runs"]}
    title = "The notebook's CNN (default, half its images) and the small model"
    report_figures.save(figures.time_to_accuracy(curves, recipe["target_accuracy"], title), paths.RECIPE_ACCURACY)
    return paths.RECIPE_ACCURACY.relative_to(paths.SPEED_MD.parent)


def levers_table(levers: dict) -> Table:
    rows = tuple((name, f"{r['images_per_second']:,.0f}", f"{r['vs_default']:.2f}×") if "error" not in r
                 else (name, "failed", r["error"]) for name, r in levers["variants"].items())
    return Table(("variant (one change from the first row)", "images / s", "vs first row"), rows, (False, True, True))


def levers_findings(levers: dict) -> list[Markdown]:
    """Sorts the variants by what they did to throughput, with a 5% band for noise."""
    measured = {name: r["vs_default"] for name, r in list(levers["variants"].items())[1:] if "error" not in r}
    groups = {"faster than the default": {n: v for n, v in measured.items() if v >= 1.05},
              "within 5% of the default (no measurable gain)": {n: v for n, v in measured.items() if 0.95 < v < 1.05},
              "slower than the default": {n: v for n, v in measured.items() if v <= 0.95}}
    return [Markdown(f"{label.capitalize()}: " + ", ".join(f"{md(n)} ({v:.2f}×)" for n, v in group.items()) + ".")
            for label, group in groups.items() if group]


def pipeline_timing(pipeline: dict) -> dict:
    """benchmarks.pipeline_time: every stage of `dvc repro --force`, run alone."""
    stages = pipeline["stages"]
    rows = tuple((Markdown(code(s["stage"]) + (" (timed again)" if s.get("retimed") else "")),
                  f"{s['work_gflop'] / 1000:,.2f}", f"{s['bound_seconds']:,.1f} s", f"{s['seconds']:,.1f} s",
                  f"{s['share']:.0%}" if s["work_gflop"] else "–", f"{s['peak_mb']:,} MB") for s in stages)
    return {"complete": pipeline["complete"], "stages": len(stages), "cores": pipeline["cores"],
            "minutes": pipeline["seconds"] / 60, "peak_mb": max(s["peak_mb"] for s in stages),
            "retimed": any(s.get("retimed") for s in stages), "peak_gflops": pipeline["matmul_peak_gflops"],
            "work_tflop": pipeline["total_tflop"], "bound_minutes": pipeline["bound_seconds"] / 60,
            "share": pipeline["share"],
            "table": Table(("stage", "work (TFLOP)", "bound", "time", "share of bound", "peak memory"), rows,
                           (False, True, True, True, True, True))}


def time_to_accuracy_figure(benchmark: dict) -> Path:
    """Saves the figure; its path as the page links it."""
    curves = {run_name(name).replace("`", ""): (np.array([c["train_seconds"] for c in r["curve"]]),
                                                np.array([c["test_accuracy"] for c in r["curve"]]))
              for name, r in benchmark["runs"].items()}
    path = paths.TIME_TO_ACCURACY
    report_figures.save(figures.time_to_accuracy(curves, benchmark["target_accuracy"],
                                          "The original CNN: test accuracy against training time"), path)
    return path.relative_to(paths.SPEED_MD.parent)


def build(benchmark: dict, recipe: dict, levers: dict, pipeline: dict) -> dict:
    """The template's context."""
    return {"benchmark": benchmark, "speed_table": speed_table(benchmark), "speed_findings": speed_findings(benchmark),
            "figure": time_to_accuracy_figure(benchmark), "recipe": recipe, "recipe_table": recipe_table(recipe),
            "recipe_findings": recipe_findings(recipe), "recipe_figure": recipe_figure(recipe),
            "levers": levers, "levers_table": levers_table(levers),
            "levers_findings": levers_findings(levers), "pipeline": pipeline_timing(pipeline)}


def main() -> None:
    measured = (paths.CNN_SPEED, paths.CNN_RECIPE, paths.CNN_LEVERS, paths.PIPELINE_TIME)
    markdown = document.render("speed.md.j2", TEMPLATES, **build(*(files.read_json(path) for path in measured)))
    document.write(markdown, paths.SPEED_MD, paths.SPEED_HTML)
    print(f"speed report: wrote {paths.SPEED_MD} and {paths.SPEED_HTML}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
