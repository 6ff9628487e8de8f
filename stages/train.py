"""Stage `train`: fit one experiment of params.yaml and save data/models/<experiment>.keras.

    python -m stages.train <experiment>

Backend-neutral Keras 3 (runs under KERAS_BACKEND=jax too). Each epoch is
checkpointed under data/checkpoints/<experiment>/, so a killed run that is started
again continues from its last finished epoch. DVCLive logs every epoch under
reports/training/<experiment>/.
"""

import hashlib
import json
import math
import sys
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from stages import cli, datasets, files, models, params, paths
from stages.params import Experiment

VALIDATION_BATCH = 1000


def make_deterministic(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        # The one backend-specific line: TensorFlow may otherwise reorder float sums between runs.
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def learning_rate(exp: Experiment, steps_per_epoch: int):
    """A constant rate, or linear warm-up then cosine decay to zero over the planned steps."""
    if exp.schedule == "constant":
        return exp.learning_rate
    total = exp.epochs * steps_per_epoch
    if exp.max_steps:
        total = min(total, exp.max_steps)
    warmup = min(round(exp.warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else exp.learning_rate,
        decay_steps=total - warmup,
        warmup_target=exp.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(model: keras.Model, exp: Experiment, steps_per_epoch: int) -> keras.Model:
    optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[exp.optimizer]
    model.compile(
        optimizer=optimizer(learning_rate(exp, steps_per_epoch)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class Checkpoints(keras.callbacks.Callback):
    """Saves the whole model (optimizer included) and the run's state after every epoch.

    state.json is written last and names the model file it belongs to, so a run
    killed at any moment resumes from a consistent pair.
    """

    def __init__(self, root: Path, name: str, fingerprint: str):
        super().__init__()
        self.root, self.folder, self.fingerprint = root, paths.inside(root, name), fingerprint
        self.state_file = self.folder / "state.json"

    def load(self) -> tuple[keras.Model | None, dict]:
        """The saved model and state, or (None, fresh state) when there is nothing to resume."""
        fresh = {"fingerprint": self.fingerprint, "epoch": 0, "steps": 0, "seconds": 0.0, "history": [],
                 "best_val_loss": math.inf, "best_epoch": None, "stopped_by": "epochs", "model_file": None}
        if not self.state_file.exists():
            return None, fresh
        state = files.read_json(self.state_file)
        if state.get("fingerprint") != self.fingerprint:
            print(f"train: discarding checkpoint in {self.folder}: made with other params or data")
            self.clear()
            return None, fresh
        return keras.saving.load_model(self.folder / state["model_file"]), state

    def save(self, model: keras.Model, state: dict) -> None:
        model_file = f"epoch-{state['epoch']:04d}.keras"
        with files.atomic_path(self.folder / model_file) as tmp:
            model.save(tmp)
        files.write_json(self.state_file, state | {"model_file": model_file})
        for old in self.folder.glob("epoch-*.keras"):
            if old.name != model_file:
                old.unlink()

    def save_best(self, model: keras.Model) -> None:
        with files.atomic_path(self.folder / "best.weights.h5") as tmp:
            model.save_weights(tmp)

    def restore_best(self, model: keras.Model) -> None:
        model.load_weights(self.folder / "best.weights.h5")

    def clear(self) -> None:
        files.remove_tree(self.folder, self.root)


class Supervisor(keras.callbacks.Callback):
    """Keeps the run's state, applies every stopping rule, logs to DVCLive and checkpoints.

    Stopping rules, first to fire wins: NaN loss ('diverged'), `max_steps`,
    `max_seconds`, `target_accuracy` (validation), `patience` epochs without a lower
    validation loss ('early_stopping'); otherwise all `epochs` ran ('epochs').
    """

    def __init__(self, exp: Experiment, state: dict, checkpoints: Checkpoints, live):
        super().__init__()
        self.exp, self.state, self.checkpoints, self.live = exp, state, checkpoints, live
        self.stopped_by = "epochs"

    def stop(self, reason: str) -> None:
        self.stopped_by = reason
        self.model.stop_training = True

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter() - self.state["seconds"]

    def on_train_batch_end(self, batch, logs=None):
        self.state["steps"] += 1
        if not math.isfinite(float(logs["loss"])):
            self.stop("diverged")
        elif self.exp.max_steps and self.state["steps"] >= self.exp.max_steps:
            self.stop("max_steps")
        elif self.exp.max_seconds and time.perf_counter() - self.started >= self.exp.max_seconds:
            self.stop("max_seconds")

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_by == "diverged":
            return
        record = {"epoch": epoch + 1, "train/loss": logs["loss"], "train/accuracy": logs["accuracy"],
                  "val/loss": logs["val_loss"], "val/accuracy": logs["val_accuracy"]}
        state = self.state
        state["history"].append(record)
        state |= {"epoch": epoch + 1, "seconds": time.perf_counter() - self.started}
        log_epoch(self.live, record)
        if logs["val_loss"] < state["best_val_loss"]:
            state |= {"best_val_loss": logs["val_loss"], "best_epoch": epoch + 1}
            self.checkpoints.save_best(self.model)
        if self.exp.target_accuracy and logs["val_accuracy"] >= self.exp.target_accuracy:
            self.stop("target_accuracy")
        elif self.exp.patience and epoch + 1 - state["best_epoch"] >= self.exp.patience:
            self.stop("early_stopping")
        state["stopped_by"] = self.stopped_by
        self.checkpoints.save(self.model, state)


def log_epoch(live, record: dict) -> None:
    for name, value in record.items():
        if name != "epoch":
            live.log_metric(name, value)
    live.next_step()


def fingerprint(exp: Experiment, data_file: Path) -> str:
    """What a checkpoint must match to be resumed: the experiment's params and its data file."""
    stat = data_file.stat()
    return hashlib.sha256(f"{asdict(exp)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def train(exp: Experiment, data: dict[str, np.ndarray], checkpoints: Checkpoints,
          live) -> tuple[keras.Model, dict]:
    """Fit the experiment's model, resuming from `checkpoints` if they match; returns the run's summary."""
    make_deterministic(exp.seed)
    batches = datasets.TrainBatches(data["x_train"], data["y_train"], data["offsets_train"], exp.placement,
                                    exp.batch_size, exp.seed, int(data["max_offset"]))
    x_val, y_val = datasets.as_input(data["x_val"]), data["y_val"].astype(np.int32)
    model, state = checkpoints.load()
    if model is None:
        model = compile_model(models.build(exp.model, x_val.shape[1:]), exp, batches.steps_per_epoch)
    else:
        print(f"train: resuming {exp.name} after epoch {state['epoch']} of {exp.epochs}")
        for record in state["history"]:
            log_epoch(live, record)
    batches.first_epoch = state["epoch"]
    supervisor = Supervisor(exp, state, checkpoints, live)
    if state["epoch"] < exp.epochs and state["stopped_by"] == "epochs":
        model.fit(batches, steps_per_epoch=batches.steps_per_epoch, epochs=exp.epochs, initial_epoch=state["epoch"],
                  validation_data=(x_val, y_val), validation_batch_size=VALIDATION_BATCH, shuffle=False,
                  callbacks=[supervisor], verbose=1 if sys.stdout.isatty() else 2)
    if supervisor.stopped_by == "diverged":
        checkpoints.clear()
        raise cli.StageError(
            f"{exp.name}: training diverged (loss is not finite) after {state['steps']} steps with "
            f"learning_rate {exp.learning_rate}; no model was saved. Try a smaller learning rate.")
    if exp.patience and state["best_epoch"] != state["epoch"]:
        checkpoints.restore_best(model)
        print(f"train: restored the weights of epoch {state['best_epoch']} (lowest validation loss)")
    return model, {"epochs": state["epoch"], "steps": state["steps"], "seconds": round(state["seconds"], 2),
                   "stopped_by": state["stopped_by"],
                   "best_epoch": state["best_epoch"], "params": model.count_params()}


def save_model(model: keras.Model, path: Path) -> None:
    """`model.save` without what Keras stamps in that differs between identical runs (the save
    date, file times, memory addresses as object ids), so that a rerun which trains the same
    weights writes the same bytes and DVC has nothing downstream to redo."""
    with files.atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as saved:
            entries = [(info, saved.read(info)) for info in saved.infolist()]
        with zipfile.ZipFile(tmp, "w") as out:
            for info, content in entries:
                if info.filename == "metadata.json":
                    content = json.dumps(json.loads(content) | {"date_saved": None}).encode()
                elif info.filename == "config.json":
                    content = json.dumps(renumber_shared_objects(json.loads(content))).encode()
                out.writestr(zipfile.ZipInfo(info.filename), content, compress_type=info.compress_type)


def renumber_shared_objects(config, ids: dict | None = None):
    """Keras marks an object used by several layers with `shared_object_id`, Python's id() of it;
    numbering them in order of appearance keeps which are shared and drops the address."""
    ids = {} if ids is None else ids
    if isinstance(config, list):
        return [renumber_shared_objects(item, ids) for item in config]
    if not isinstance(config, dict):
        return config
    renumbered = {key: renumber_shared_objects(value, ids) for key, value in config.items()}
    if "shared_object_id" in config:
        renumbered["shared_object_id"] = ids.setdefault(config["shared_object_id"], len(ids) + 1)
    return renumbered


def main(name: str) -> None:
    from dvclive import Live

    exp = params.load().experiment(name)
    data_file = paths.dataset(exp.data)
    checkpoints = Checkpoints(paths.CHECKPOINTS, name, fingerprint(exp, data_file))
    with Live(dir=str(paths.training_log(name)), save_dvc_exp=False, dvcyaml=False) as live:
        model, summary = train(exp, datasets.load(exp.data), checkpoints, live)
        live.summary |= summary
    save_model(model, paths.model(name))
    checkpoints.clear()
    print(f"train: {name}: {summary['epochs']} epochs, {summary['steps']} steps, {summary['seconds']:.1f} s, "
          f"stopped by {summary['stopped_by']}; saved {paths.model(name)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stages.train <experiment>")
    sys.exit(cli.run(main, sys.argv[1]))
