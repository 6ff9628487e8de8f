"""What the pipeline must compute, and how fast this machine can: the yardstick of the speed pages.

    python -m benchmarks.compute [--work-only]   # prints the JSON that benchmarks/pipeline_time.py records

A stage's work is the floating-point operations its models must do, counted from the
convolution and dense layers (multiply-adds x2; forward x3 for forward plus backward):
training, the images seen times forward and backward plus one validation pass per epoch;
scoring, the images times forward. Its bound is that work at this machine's float32
matrix-product peak, measured here; a stage's share is its bound over its measured time, so
1.0 would be a stage doing nothing but peak-speed products. Stages without a model
(download, translate, compare) count zero, and so does the report, which only draws.
"""

import argparse
import json
import math
import time

import keras
import numpy as np

from stages import models, params

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of a float32 (size x size) @ (size x size) product on this machine."""
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((size, size), dtype=np.float32))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def forward_flops(model: keras.Model) -> float:
    """FLOPs of one image through the model's convolution and dense layers (multiply-adds x2)."""
    forward = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            forward += 2 * kh * kw * c_in * c_out * h * w
        elif isinstance(layer, keras.layers.Dense):
            forward += 2 * int(np.prod(layer.kernel.shape))
    return forward


def training_flops_per_image(model: keras.Model) -> float:
    return 3 * forward_flops(model)


def stage_work(p: params.Params) -> dict[str, float]:
    """FLOPs each stage of the default pipeline must do, by stage name (`dvc stage list`)."""
    n_val = p.data.validation_size
    n_train = MNIST_TRAIN - n_val
    work = {}
    for name, exp in p.experiments.items():
        side = p.translate.side(exp.data)
        forward = forward_flops(models.build(exp.model, (side, side, 1)))
        run = exp.epochs * (3 * forward * n_train + forward * n_val)
        if exp.max_steps:
            run = min(run, 3 * forward * exp.max_steps * exp.batch_size + forward * n_val * exp.epochs)
        work[f"train@{name}"] = run
        work[f"evaluate@{name}"] = forward * MNIST_TEST
        work[f"seeds@{name}"] = (p.seeds[name] - 1) * (run + forward * MNIST_TEST)
    for name in p.invariance.experiments:
        exp = p.experiments[name]
        side = p.translate.side(exp.data)
        work[f"invariance@{name}"] = forward_flops(models.build(exp.model, (side, side, 1))) * \
            p.invariance.test_digits * (side - 27) ** 2
    return work


def counted_work() -> dict:
    """The default pipeline's work as pipeline_time records it: GFLOP by stage, and the total in TFLOP."""
    work = stage_work(params.load())
    return {"work_gflop": {k: round(v / 1e9, 1) for k, v in work.items()},
            "total_tflop": round(math.fsum(work.values()) / 1e12, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description="The default pipeline's counted work, and this machine's peak.")
    parser.add_argument("--work-only", action="store_true", help="count the work; do not measure the peak")
    if parser.parse_args().work_only:
        print(json.dumps(counted_work()))
        return
    peak = matmul_peak()  # first, on the idle machine
    print(json.dumps({"matmul_peak_gflops": round(peak, 1)} | counted_work()))


if __name__ == "__main__":
    main()
