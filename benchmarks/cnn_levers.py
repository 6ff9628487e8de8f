"""Which settings make the original CNN train faster on this machine? Images per second, one lever at a time.

    python -m benchmarks.cnn_levers [--steps N] [--rounds R]

Each variant runs in a fresh Python process (thread pools, determinism, dtype policies,
the Keras backend and TensorFlow's environment options are process-wide), trains the
notebook's CNN on random 40x40 images for a few warm-up steps and then N timed steps, and
reports training images per second. A shared machine's speed drifts, so the variants run
in turn R times over: each variant's figure is the median of its rounds, and its ratio to
the default the median of the ratios within a round. Only throughput is measured here;
benchmarks/cnn_speed.py measures time to accuracy. The JAX row needs `pip install -e '.[jax]'`.
Writes reports/benchmarks/cnn_levers.json, which benchmarks/speed_report.py shows.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import paths
from stages import files

OUTPUT = paths.CNN_LEVERS
WARMUP_STEPS = 5

# name -> settings, each one change from the first row: the project's default path
# (TensorFlow, params.yaml's cnn_translated batch size, deterministic ops, float32, Keras fit). Where the
# CPU computes bfloat16 natively, the pipeline's CNNs take the "mixed bfloat16" row (precision: auto).
VARIANTS = {
    "default": {},
    "batch 50 (original)": {"batch_size": 50},
    "batch 128": {"batch_size": 128},
    "batch 256": {"batch_size": 256},
    "batch 1024": {"batch_size": 1024},
    "no op determinism": {"deterministic": False},
    "XLA (jit_compile)": {"jit_compile": True},
    "8 steps per execution": {"steps_per_execution": 8},
    "1 inter-op thread": {"inter_op_threads": 1},
    "mixed bfloat16": {"policy": "mixed_bfloat16"},
    "oneDNN off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},  # TensorFlow's own default on AVX2 CPUs
    "JAX backend": {"env": {"KERAS_BACKEND": "jax"}},
}


def measure(settings: dict, steps: int) -> float:
    """Training images per second of the notebook's CNN with these settings (run in this process)."""
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if settings.get("inter_op_threads"):
            tf.config.threading.set_inter_op_parallelism_threads(settings["inter_op_threads"])
        if settings.get("deterministic", True):
            tf.config.experimental.enable_op_determinism()
    if settings.get("policy"):
        keras.mixed_precision.set_global_policy(settings["policy"])
    from stages import models, params

    keras.utils.set_random_seed(1)
    batch_size = settings.get("batch_size", params.load().experiment("cnn_translated").batch_size)
    per_execution = settings.get("steps_per_execution", 1)
    rng = np.random.default_rng(0)
    total = (WARMUP_STEPS * per_execution + steps) * batch_size
    x = rng.random((total, 40, 40, 1), dtype=np.float32)
    y = rng.integers(0, 10, total).astype(np.int32)
    model = models.cnn((40, 40, 1))
    # "auto", as in the train stage: XLA under JAX, not under TensorFlow on a CPU
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=settings.get("jit_compile", "auto"),
                  steps_per_execution=per_execution,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Clock(keras.callbacks.Callback):
        """Starts after WARMUP_STEPS callbacks (one per execution of `per_execution` steps)."""
        calls, start = 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.calls += 1
            if self.calls == WARMUP_STEPS:
                self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    executions = WARMUP_STEPS + max(1, steps // per_execution)
    model.fit(x, y, batch_size=batch_size, steps_per_epoch=executions * per_execution, epochs=1, shuffle=False,
              verbose=0, callbacks=[clock])
    return (clock.calls - WARMUP_STEPS) * per_execution * batch_size / clock.seconds


def measure_apart(name: str, steps: int) -> dict:
    """One variant in a fresh process: {"images_per_second": ...} or {"error": its last line of stderr}."""
    out = subprocess.run([sys.executable, "-m", __spec__.name, "--one", name, "--steps", str(steps)],
                         capture_output=True, text=True, env=os.environ | VARIANTS[name].get("env", {}))
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Per variant: the median images/s of its rounds and the median of its ratios to the same round's default.

    A variant that failed in any round, or whose round's default failed, gets the error instead."""
    summary = {}
    for name in rounds[0]:
        failed = ([r[name]["error"] for r in rounds if "error" in r[name]]
                  or [f"default failed: {r['default']['error']}" for r in rounds if "error" in r["default"]])
        if failed:
            summary[name] = {"error": failed[0]}
            continue
        rates = [r[name]["images_per_second"] for r in rounds]
        ratios = [r[name]["images_per_second"] / r["default"]["images_per_second"] for r in rounds]
        summary[name] = {"images_per_second": statistics.median(rates),
                         "vs_default": round(statistics.median(ratios), 2),
                         "rounds": [round(rate, 1) for rate in rates]}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per variant")
    parser.add_argument("--rounds", type=int, default=3, help="times every variant is measured, in turn")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps({"images_per_second": measure(VARIANTS[args.one], args.steps)}))
        return
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append({})
        for name in VARIANTS:
            result = rounds[-1][name] = measure_apart(name, args.steps)
            shown = (f"{result['images_per_second']:8.0f} images/s" if "error" not in result
                     else f"failed: {result['error']}")
            print(f"round {number}/{args.rounds}  {name:<24} {shown}", flush=True)
    variants = summarise(rounds)
    for name, r in variants.items():
        if "error" not in r:
            print(f"{name:<24} {r['images_per_second']:8.0f} images/s  {r['vs_default']:5.2f}x (median)")
    files.write_json(OUTPUT, {"steps": args.steps, "rounds": args.rounds, "variants": variants})
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
