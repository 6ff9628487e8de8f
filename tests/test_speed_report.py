import pytest

from benchmarks import paths, pipeline_time, speed_report
from stages import files
from stages.cli import StageError


def benchmark_run(batch, accuracies, seconds_per_check, onednn):
    curve = [{"images": 100 * (i + 1), "train_seconds": seconds_per_check * (i + 1), "test_accuracy": a}
             for i, a in enumerate(accuracies)]
    reached = next((c for c in curve if c["test_accuracy"] >= 0.965), None)
    return {"batch_size": batch, "onednn": onednn, "seconds_to_target": reached and reached["train_seconds"],
            "images_to_target": reached and reached["images"], "train_seconds": curve[-1]["train_seconds"],
            "eval_seconds": 1.0, "images_per_second": 100 / seconds_per_check, "gflops": 8.64 / seconds_per_check,
            "share_of_peak": 0.0864 / seconds_per_check, "curve": curve}


def benchmark(original=(0.5, 0.9, 0.96, 0.97), default=(0.8, 0.97)):
    runs = {"original": benchmark_run(50, original, 10.0, False), "default": benchmark_run(512, default, 4.0, True)}
    a, b = runs["original"], runs["default"]
    return {"backend": "tensorflow", "cores": 2, "matmul_peak_gflops": 100.0, "cnn_training_mflop_per_image": 86.4,
            "eval_images": 5000,
            "target_accuracy": 0.965, "runs": runs,
            "speedup_to_target": (a["seconds_to_target"] or a["train_seconds"]) / b["seconds_to_target"],
            "speedup_is_lower_bound": a["seconds_to_target"] is None}


def recipe_run(seed, accuracies, images_per_epoch, seconds_per_epoch):
    curve = [{"images": images_per_epoch * (i + 1), "train_seconds": seconds_per_epoch * (i + 1), "test_accuracy": a}
             for i, a in enumerate(accuracies)]
    reached = next((c for c in curve if c["test_accuracy"] >= 0.99), None)
    return {"seed": seed, "images": curve[-1]["images"], "train_seconds": curve[-1]["train_seconds"],
            "final_accuracy": accuracies[-1], "images_to_target": reached and reached["images"],
            "seconds_to_target": reached and reached["train_seconds"], "curve": curve}


def recipe(half=((0.98, 0.9895), (0.985, 0.9901))):
    default = [recipe_run(1, (0.98, 0.99, 0.9910, 0.9912), 1000, 20.0),
               recipe_run(2, (0.98, 0.989, 0.9895, 0.9904), 1000, 20.0)]
    halves = [recipe_run(seed, accuracies, 1000, 10.0) for seed, accuracies in enumerate(half, 1)]

    def summary(epochs, batch, runs):
        mean = sum(r["final_accuracy"] for r in runs) / len(runs)
        return {"epochs": epochs, "batch_size": batch, "learning_rate": 0.004, "images": runs[0]["images"],
                "mean_final_accuracy": round(mean, 5), "reaches_target": mean >= 0.99,
                "mean_train_seconds": sum(r["train_seconds"] for r in runs) / len(runs), "runs": runs}

    return {"backend": "tensorflow", "target_accuracy": 0.99, "seeds": 2, "image_ratio": 0.5, "scores_per_epoch": 4,
            "recipes": {"default": summary(4, 512, default), "half": summary(2, 256, halves)}}


def levers():
    return {"steps": 5, "rounds": 3, "variants": {"default": {"images_per_second": 100.0, "vs_default": 1.0},
                                                  "batch 1024": {"images_per_second": 120.0, "vs_default": 1.2},
                                                  "XLA (jit_compile)": {"images_per_second": 101.0, "vs_default": 1.01},
                                                  "mixed bfloat16": {"images_per_second": 60.0, "vs_default": 0.6},
                                                  "JAX backend": {"error": "No module named 'jax'"}}}


def pipeline(complete=True):
    stages = [{"stage": "download", "seconds": 30.0, "peak_mb": 300}, {"stage": "train@lin", "seconds": 90.0,
                                                                        "peak_mb": 2100}]
    result = {"cores": 2, "complete": complete, "stages": stages, "seconds": 120.0, "matmul_peak_gflops": 100.0,
              "work_gflop": {"train@lin": 4500.0}, "total_tflop": 4.5}
    pipeline_time.efficiency(result)
    return result


def render(folder, monkeypatch, timings=None, recipe_result=None):
    """The page in `folder` from the three measurements: (Markdown, HTML)."""
    monkeypatch.chdir(folder)
    files.write_json(paths.CNN_SPEED, benchmark())
    files.write_json(paths.CNN_RECIPE, recipe_result or recipe())
    files.write_json(paths.CNN_LEVERS, levers())
    files.write_json(paths.PIPELINE_TIME, timings or pipeline())
    speed_report.main()
    return paths.SPEED_MD.read_text(encoding="utf-8"), paths.SPEED_HTML.read_text(encoding="utf-8")


def words(markdown):
    """The text with every line break a space: the template wraps its prose where it likes."""
    return " ".join(markdown.split())


def test_speed_findings_come_from_the_benchmark_and_say_when_a_speedup_is_only_a_bound():
    text = " ".join(speed_report.speed_findings(benchmark()))
    assert "5.0× sooner" in text and "(8 s of training against 40 s)" in text
    assert "2.5× faster (25 against 10 images/s)" in text
    assert ("This project's `cnn_translated` settings: first scored 97.00%, at or above 96.50% (95% interval "
            "96.65–97.32% on 10,000 test images)") in text
    bounded = " ".join(speed_report.speed_findings(benchmark(original=(0.5, 0.9))))
    assert "at least 2.5× sooner" in bounded and "more than 20 s" in bounded
    assert "Original settings (Adam 1e-4, batch 50, fixed images): did not reach 96.50% within 20 s" in bounded


def test_levers_findings_sort_the_variants_by_throughput_and_leave_out_the_failed():
    assert speed_report.levers_findings(levers()) == [
        "Faster than the default: batch 1024 (1.20×).",
        "Within 5% of the default (no measurable gain): XLA (jit\\_compile) (1.01×).",
        "Slower than the default: mixed bfloat16 (0.60×)."]
    assert speed_report.levers_table(levers()).rows[-1] == ("JAX backend", "failed", "No module named 'jax'")


def test_speed_table_says_which_kernels_each_run_used():
    table = speed_report.speed_table(benchmark())
    kernels = [row[table.header.index("oneDNN")] for row in table.rows]
    assert kernels == ["off", "on"]
    assert table.header[3] == "seconds to 96.50%" and [row[3] for row in table.rows] == ["40 s", "8 s"]


def test_the_page_shows_every_measurement_and_embeds_its_figure(tmp_path, monkeypatch):
    markdown, page = render(tmp_path, monkeypatch)
    assert "on one machine (2 cores, Keras on tensorflow)" in words(markdown) and "86.4 MFLOP" in markdown
    assert "| this project's `cnn_translated` settings | 512 | on | 8 s | 200 | 25 | 2.2 | 2.16% |" in markdown
    assert "(5 timed steps" in words(markdown) and "| batch 1024 | 120 | 1.20× |" in markdown
    assert markdown.count("![") == 2 and "](benchmarks/time_to_accuracy.png)" in markdown
    assert "](benchmarks/recipe_accuracy.png)" in markdown
    assert page.count('src="data:image/png;base64,') == 2 and "<title>Translated MNIST: speed</title>" in page
    assert paths.TIME_TO_ACCURACY.read_bytes().startswith(b"\x89PNG")
    assert paths.RECIPE_ACCURACY.read_bytes().startswith(b"\x89PNG")


def test_the_recipe_comparison_shows_every_seed_and_says_whether_the_half_recipe_reaches_the_target(
        tmp_path, monkeypatch):
    markdown, _ = render(tmp_path, monkeypatch)
    text = words(markdown)
    assert "scores the full test set 4 times an epoch, after equal shares of its steps" in text
    assert ("| this project's `cnn_translated` settings | 4 × 512 | 0.004 | 4,000 | 99.12%, 99.04% | **99.08%** "
            "| 2,000, 4,000 | 80 s |") in markdown
    assert ("| half the images: fewer epochs, smaller batches | 2 × 256 | 0.004 | 2,000 | 98.95%, 99.01% | **98.98%** "
            "| —, 2,000 | 20 s |") in markdown
    assert ("With 50% of the default's training images (2,000 against 4,000), the half recipe does not reach "
            "99.00%: its mean over 2 seeds is 98.98%, against 99.08% for the default, in 0.25× the training time."
            ) in text
    assert "The seeds of the default scored 99.04% to 99.12%" in text and "of the half recipe scored 98.95%" in text
    assert ("After 2,000 images, half-way through its schedule, the default scored 98.95% on the mean of its seeds; "
            "the half recipe, its learning rate annealed to zero by then, 98.98%.") in text
    markdown, _ = render(tmp_path, monkeypatch, recipe_result=recipe(half=((0.98, 0.9905), (0.985, 0.9901))))
    assert "the half recipe reaches 99.00%: its mean over 2 seeds is 99.03%" in words(markdown)


def test_pipeline_timing_sums_the_stages_and_says_when_the_run_stopped_early(tmp_path, monkeypatch):
    markdown, _ = render(tmp_path, monkeypatch)
    assert "The whole pipeline, one stage at a time" in words(markdown) and "2.0 minutes" in markdown
    assert "2,100 MB" in markdown and "| `train@lin` | 4.50 | 45.0 s | 90.0 s | 50% | 2,100 MB |" in markdown
    assert "| `download` | 0.00 | 0.0 s | 30.0 s | – | 300 MB |" in markdown
    assert "is 0.8 minutes: the pipeline ran at **38% of its compute bound**." in words(markdown)
    assert "timed again" not in markdown
    markdown, _ = render(tmp_path, monkeypatch, pipeline(complete=False))
    assert "The first 2 stages of the pipeline, one stage at a time" in words(markdown)


def test_pipeline_timing_marks_the_stages_timed_again_alone(tmp_path, monkeypatch):
    timings = pipeline()
    timings["stages"][1]["retimed"] = True
    markdown, _ = render(tmp_path, monkeypatch, timings)
    assert "float32's. Stages marked “timed again” come from a later run of just those stages." in words(markdown)
    assert "| `download` | 0.00 |" in markdown and "| `train@lin` (timed again) | 4.50 |" in markdown


def test_the_same_measurements_give_the_same_bytes(tmp_path, monkeypatch):
    first = render(tmp_path, monkeypatch) + (paths.TIME_TO_ACCURACY.read_bytes(),)
    second = render(tmp_path, monkeypatch) + (paths.TIME_TO_ACCURACY.read_bytes(),)
    assert first == second


def test_missing_measurements_name_the_file_and_the_pipeline_that_makes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files.write_json(paths.CNN_SPEED, benchmark())
    with pytest.raises(StageError) as error:
        speed_report.main()
    assert str(error.value) == ("reports/benchmarks/cnn_recipe.json is missing: run `dvc repro benchmarks/dvc.yaml` "
                                "to make it again, or `git checkout -- reports/benchmarks/cnn_recipe.json` to restore "
                                "the committed one")


def test_the_small_models_time_to_the_target_is_told_beside_the_default():
    result = recipe()
    small = [recipe_run(seed, (0.985, 0.991, 0.993), 1000, 5.0) for seed in (1, 2)]
    result["recipes"]["small"] = result["recipes"]["half"] | {"model": "cnn_bn", "runs": small}
    # default: 40 s and 80 s to 99%; small: 10 s each
    text = " ".join(speed_report.recipe_findings(result))
    # images: the default got there after 2,000 and 4,000, the small model after 2,000 each
    assert ("The small model (cnn_bn, `cnn_bn_translated`) reached 99.00% 6.00× sooner than the default by mean "
            "training seconds, 1.50× by images seen; per seed after 10 s, 10 s.") in text
    default_runs = result["recipes"]["default"]["runs"]
    default_runs[1] = recipe_run(2, (0.98, 0.985, 0.989, 0.9895), 1000, 20.0)  # a default run that never got there
    text = " ".join(speed_report.recipe_findings(result))  # counted as its whole run: 80 s, 4,000 images
    assert ("reached 99.00% at least 6.00× sooner than the default by mean training seconds, at least 1.50× by "
            "images seen (the default's seed 2 never got there; each such run counts as its whole training)") in text
    result["recipes"]["small"]["runs"][1] = recipe_run(2, (0.98, 0.985), 1000, 5.0)  # one run never got there
    assert "not in every run, so no ratio is given; per seed after 10 s, —." in " ".join(
        speed_report.recipe_findings(result))
