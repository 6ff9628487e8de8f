"""Which settings make the original CNN train faster on this machine? Images per second, one lever at a time.

    .venv/bin/python benchmarks/cnn_levers.py [--steps N]

Each variant runs in a fresh Python process (thread pools, determinism, dtype policies
and TensorFlow's environment options are process-wide), trains the notebook's CNN on
random 40x40 images for a few warm-up steps and then N timed steps, and reports training
images per second. Only throughput is measured here; benchmarks/cnn_speed.py measures
time to accuracy.
Writes reports/benchmark_levers.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages import files, paths  # noqa: E402

OUTPUT = paths.BENCHMARK_LEVERS
WARMUP_STEPS = 5

# name -> settings, each one change from the first row: the project's default path
# (params.yaml's cnn_translated batch size, deterministic ops, float32, Keras fit).
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
}


def measure(settings: dict, steps: int) -> float:
    """Training images per second of the notebook's CNN with these settings (run in this process)."""
    import keras
    import numpy as np
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
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=settings.get("jit_compile", False),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per variant")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps({"images_per_second": measure(VARIANTS[args.one], args.steps)}))
        return
    results = {}
    for name in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(args.steps)],
                             capture_output=True, text=True, env=os.environ | VARIANTS[name].get("env", {}))
        if out.returncode:
            results[name] = {"error": out.stderr.strip().splitlines()[-1]}
            print(f"{name:<24} failed: {results[name]['error']}", flush=True)
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = results[name]["images_per_second"] / results[next(iter(results))]["images_per_second"]
        results[name]["vs_default"] = round(ratio, 2)
        print(f"{name:<24} {results[name]['images_per_second']:8.0f} images/s  {ratio:5.2f}x", flush=True)
    files.write_json(OUTPUT, {"steps": args.steps, "variants": results})
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
