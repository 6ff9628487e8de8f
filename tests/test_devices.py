"""`data_parallel`: one model trained on several devices at once, on a CPU that shows two.

Each backend decides its devices when it starts, so every run is a fresh Python process:
JAX is told to show two CPU devices by XLA_FLAGS, TensorFlow by a logical-device setting made
before anything else uses it. The run trains the real `training.fit` on tiny data with one
device and with two, and reports the accuracies and what each device saw of a batch.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Two devices sum each batch's gradients in another order than one does, and the difference grows
# over the steps; on 200 test digits one digit is 0.5 points.
ACCURACY_TOLERANCE = 0.03

RUN = """
import json, os, sys, tempfile
from pathlib import Path
backend = os.environ["KERAS_BACKEND"]
if backend == "tensorflow":
    import stages  # its TensorFlow settings first
    import tensorflow as tf
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from conftest import experiment, write_datasets
from stages import datasets, files, models, training

seen = []  # per run: the shape of one batch on one device


class Probe(keras.layers.Layer):
    # Records, when training is traced, how much of a batch one device holds.
    def call(self, x, training=None):
        if training:
            if backend == "jax":
                import jax
                jax.debug.inspect_array_sharding(x, callback=lambda s: seen.append(s.shard_shape(x.shape)[0]))
            else:  # the batch dimension is known only when the step runs
                n = tf.numpy_function(lambda n: seen.append(int(n)) or n, [tf.shape(x)[0]], tf.int32)
                with tf.control_dependencies([n]):
                    return tf.identity(x)
        return x


build = models.build
models.build = lambda name, shape: keras.Sequential([keras.Input(shape), Probe(), build(name, shape)])
folder = Path(tempfile.mkdtemp())
write_datasets(folder)
data = files.load_npz(folder / "translated.npz")
result = {}
for parallel in (True, False):  # a cluster is joined before anything computes
    seen.clear()
    exp = experiment(model="mlp", data_parallel=parallel, epochs=3)
    model, state = training.fit(exp, data, training.Checkpoints(folder / "checkpoints", f"run{parallel:d}", "x"))
    predicted = np.asarray(model.predict(datasets.as_input(data["x_test"]), verbose=0)).argmax(axis=1)
    result[str(parallel)] = {"accuracy": float(np.mean(predicted == data["y_test"])),
                             "device_batch": sorted(set(seen)), "batch": exp.batch_size}
result["devices"] = keras.distribution.list_devices()
print("RESULT" + json.dumps(result))
"""


def train_both_ways(backend: str, **env) -> dict:
    run = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=os.environ | {"KERAS_BACKEND": backend,
                                           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
                         | env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    return json.loads(line.removeprefix("RESULT"))


def check(result: dict) -> None:
    one, two = result["False"], result["True"]
    assert len(result["devices"]) == 2
    assert one["device_batch"] == [one["batch"]]  # one device holds the whole batch
    assert two["device_batch"] == [two["batch"] // 2]  # two hold half each
    assert one["accuracy"] > 0.5  # both learned (ten classes)
    assert abs(one["accuracy"] - two["accuracy"]) <= ACCURACY_TOLERANCE


def test_data_parallel_on_two_jax_devices_splits_each_batch_and_learns_the_same():
    pytest.importorskip("jax")
    check(train_both_ways("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"))


def test_data_parallel_on_two_tensorflow_devices_splits_each_batch_and_learns_the_same():
    pytest.importorskip("tensorflow")
    check(train_both_ways("tensorflow"))


def test_data_parallel_in_a_one_process_jax_cluster_joins_it_and_splits_each_batch():
    # What a launcher sets on every host; one process here, on two local devices.
    pytest.importorskip("jax")
    check(train_both_ways("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
                          KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:23457", KERAS_DISTRIBUTION_NUM_PROCESSES="1",
                          KERAS_DISTRIBUTION_PROCESS_ID="0"))
