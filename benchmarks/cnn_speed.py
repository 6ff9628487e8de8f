"""How fast does the original CNN reach the original's accuracy? Original settings vs ours, one run.

    python -m benchmarks.cnn_speed [--max-seconds S] [--eval-images N]

Trains the notebook's CNN architecture on the translated data two ways, on this machine:
  (a) original: Adam 1e-4 constant, batch 50, the translate stage's fixed training images,
      on TensorFlow's own kernels (oneDNN off, TensorFlow's default on AVX2 CPUs): plain Keras;
  (b) default:  params.yaml's `cnn_translated` settings, with the oneDNN kernels the stages use.
Both go through the train stage's own code (model, optimizer, batches), one after the other,
each in a fresh process (TensorFlow reads its kernel choice once, at import).
Every `--eval-images` training images it scores the full 10000-image translated test set
(timed apart from training) and records when accuracy first reaches 96.5%, the original's
96.51%. It also measures this machine's float32 matrix-product peak, so throughput can be
read as a share of it (benchmarks/pipeline_time.py times the whole pipeline). Needs the
translate stage's data (`dvc repro translate`). Writes reports/benchmarks/cnn_speed.json, which
benchmarks/speed_report.py shows.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np

from benchmarks import paths
from benchmarks.compute import matmul_peak, training_flops_per_image
from stages import datasets, files, models, params, training
from stages import paths as stage_paths

OUTPUT = paths.CNN_SPEED
TARGET = 0.965
EXPERIMENT = "cnn_translated"
# Each run's process environment: (a) is plain Keras, so TensorFlow's kernels rather than the stages' oneDNN.
ENVIRONMENT = {"original": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "default": {}}


class TestCheck(keras.callbacks.Callback):
    """Scores the full test set after every Keras 'epoch' (= one evaluation interval).

    Training time excludes the scoring; stops at the target or when max_seconds of training ran.
    """

    def __init__(self, x_test, y_test, batch_size: int, max_seconds: float):
        super().__init__()
        self.x_test, self.y_test, self.batch_size, self.max_seconds = x_test, y_test, batch_size, max_seconds
        self.train_seconds = self.eval_seconds = 0.0
        self.images, self.curve, self.reached = 0, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.images += self.batch_size

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self.started
        start = time.perf_counter()
        logits = self.model.predict(self.x_test, batch_size=1000, verbose=0)
        accuracy = float(np.mean(np.asarray(logits).argmax(axis=1) == self.y_test))
        self.eval_seconds += time.perf_counter() - start
        self.curve.append({"images": self.images, "train_seconds": round(self.train_seconds, 2),
                           "test_accuracy": accuracy})
        print(f"  {self.images:>8} images  {self.train_seconds:7.1f} s  test accuracy {accuracy:.2%}", file=sys.stderr)
        if accuracy >= TARGET and self.reached is None:
            self.reached = self.curve[-1]
            self.model.stop_training = True
        elif self.train_seconds >= self.max_seconds:
            self.model.stop_training = True


def settings() -> dict[str, params.Experiment]:
    """(a) params.yaml's cnn_translated with the notebook's settings, as notebook.yaml (`make notebook`)
    sets them; (b) params.yaml's cnn_translated as it is."""
    default = params.load().experiment(EXPERIMENT)
    original = default.model_copy(update=dict(placement="fixed", optimizer="adam", learning_rate=1e-4,
                                              schedule="constant", warmup_epochs=0, batch_size=50, seed=1,
                                              precision="float32"))
    return {"original": original, "default": default}


def measure(name: str, args) -> dict:
    """Trains one run until the target or the time cap; model, optimizer and batches as the train stage makes them."""
    exp, data = settings()[name], datasets.load("mnist", "translated")
    training.make_deterministic(exp.seed)
    batches = training.TrainBatches.of(exp, data)
    model = training.compiled_model(exp, (*data["x_val"].shape[1:], 1), batches.steps_per_epoch)
    interval = max(1, round(args.eval_images / exp.batch_size))
    check = TestCheck(datasets.as_input(data["x_test"]), data["y_test"].astype(np.int64), exp.batch_size,
                      args.max_seconds)
    onednn = os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    print(f"{name}: batch {exp.batch_size}, oneDNN {'on' if onednn else 'off'}, test accuracy every "
          f"{interval * exp.batch_size} images", file=sys.stderr)
    model.fit(batches, steps_per_epoch=interval, epochs=10**6, shuffle=False, callbacks=[check], verbose=0)
    return {
        "batch_size": exp.batch_size,
        "onednn": onednn,
        "seconds_to_target": check.reached and check.reached["train_seconds"],
        "images_to_target": check.reached and check.reached["images"],
        "train_seconds": round(check.train_seconds, 2),
        "eval_seconds": round(check.eval_seconds, 2),
        "images_per_second": round(check.images / check.train_seconds, 1),
        "curve": check.curve,
    }


def measure_apart(name: str, args, flops: float, peak: float) -> dict:
    """`measure` in a fresh process with the run's environment; adds GFLOP/s and the share of `peak`."""
    command = [sys.executable, "-m", __spec__.name, "--run", name, "--max-seconds", str(args.max_seconds),
               "--eval-images", str(args.eval_images)]
    out = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=os.environ | ENVIRONMENT[name])
    if out.returncode:
        sys.exit(f"cnn_speed: the {name} run failed (exit {out.returncode}); its error is above")
    result = json.loads(out.stdout)
    gflops = result["images_per_second"] * flops / 1e9
    return result | {"gflops": round(gflops, 2), "share_of_peak": round(gflops / peak, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=3600, help="training time cap per run (s)")
    parser.add_argument("--eval-images", type=int, default=5000, help="training images between test checks")
    # internal: one run, progress on stderr, its result as JSON on stdout
    parser.add_argument("--run", choices=ENVIRONMENT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(measure(args.run, args)))
        return

    data_file = stage_paths.dataset("mnist", "translated")
    if not data_file.exists():
        sys.exit(f"cnn_speed: {data_file} is missing; run `dvc repro translate` first")
    with np.load(data_file) as data:  # an .npz reads only the arrays asked for: here the small validation set
        canvas = data["x_val"].shape[1:]
    peak = matmul_peak()
    flops = training_flops_per_image(models.cnn((*canvas, 1)))
    print(f"matrix-product peak {peak:.0f} GFLOP/s; the CNN costs {flops / 1e6:.0f} MFLOP per training image")
    result = {"backend": keras.backend.backend(), "cores": os.cpu_count(), "matmul_peak_gflops": round(peak, 1),
              "cnn_training_mflop_per_image": round(flops / 1e6, 1), "target_accuracy": TARGET,
              "eval_images": args.eval_images,
              "runs": {name: measure_apart(name, args, flops, peak) for name in settings()}}
    a, b = result["runs"]["original"], result["runs"]["default"]
    if b["seconds_to_target"]:
        # Original not there by the time cap: its whole training time gives a lower bound.
        result["speedup_to_target"] = round((a["seconds_to_target"] or a["train_seconds"]) / b["seconds_to_target"], 2)
        result["speedup_is_lower_bound"] = a["seconds_to_target"] is None
    files.write_json(OUTPUT, result)
    print(f"\n{'run':<10}{'batch':>6}{'s to 96.5%':>12}{'images/s':>10}{'GFLOP/s':>9}{'of peak':>9}")
    for name, r in result["runs"].items():
        reached = f"{r['seconds_to_target']:.0f}" if r["seconds_to_target"] else "not reached"
        print(f"{name:<10}{r['batch_size']:>6}{reached:>12}{r['images_per_second']:>10.0f}{r['gflops']:>9.1f}"
              f"{r['share_of_peak']:>9.0%}")
    if "speedup_to_target" in result:
        bound = "at least " if result["speedup_is_lower_bound"] else ""
        print(f"default reaches {TARGET:.1%} {bound}{result['speedup_to_target']}x sooner than the original settings")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
