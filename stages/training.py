"""Fitting one experiment: its optimizer and schedule, the stopping rules, and per-epoch
checkpoints from which a killed run resumes to the same weights, bit for bit.

Backend-neutral Keras 3 (the stages run under KERAS_BACKEND=jax too); used by the train
stage and by benchmarks/cnn_speed.py.
"""

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from stages import datasets, files, models, paths, schemas
from stages.canvas import add_clutter, centre_offsets, draw_offsets, extract, place
from stages.cli import StageError
from stages.params import Experiment

VALIDATION_BATCH = 1000
# The cross-entropy of a uniform guess over the ten digits. A mean training loss of ten times
# that is not a model learning slowly but one whose steps are too large: stop there.
EXPLODED_LOSS = 10 * math.log(models.NUM_CLASSES)


class TrainBatches(keras.utils.PyDataset):
    """Shuffled training batches, with the digits optionally placed anew every epoch.

    placement: 'fixed' uses the translate stage's images as they are; 'fresh' draws
    a new offset for every digit every epoch; 'centre' puts every digit at the canvas
    centre. Batch i belongs to epoch first_epoch + i // steps_per_epoch, and that
    epoch's images and order depend only on (seed, epoch): so the data are the same
    whatever Keras prefetches, and a resumed run continues with the right epoch.
    Images stay uint8 until a batch is drawn: converting a whole epoch's worth to
    float32 took longer than placing the digits, and four times the memory.
    """

    def __init__(self, images, labels, offsets, placement: str, batch_size: int, seed: int, max_offset: int,
                 clutter: tuple[int, int] = (0, 0), digits=None):
        super().__init__()
        self.labels = labels.astype(np.int32)
        self.placement, self.batch_size, self.seed, self.max_offset = placement, batch_size, seed, max_offset
        self.clutter = clutter  # (pieces, side): drawn afresh with the offsets, as the translate stage drew it
        self.canvas = images.shape[1]
        if placement == "fixed":
            self.fixed_images = images
        else:
            self.digits = extract(images, offsets) if digits is None else digits  # a cluttered file's own
        self.steps_per_epoch = math.ceil(len(labels) / batch_size)
        self.first_epoch = 0
        self._epoch, self._images, self._order = None, None, None

    @classmethod
    def of(cls, exp: Experiment, data: dict[str, np.ndarray]) -> "TrainBatches":
        """The training batches of experiment `exp` from its dataset file's arrays."""
        clutter = tuple(int(n) for n in data["clutter"]) if "clutter" in data else (0, 0)
        return cls(data["x_train"], data["y_train"], data["offsets_train"], exp.placement, exp.batch_size,
                   exp.seed, int(data["max_offset"]), clutter, data.get("digits_train"))

    @property
    def num_batches(self):
        return None  # endless: Keras asks for steps_per_epoch batches per epoch

    def _prepare(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self._order = rng.permutation(len(self.labels))
        if self.placement == "fixed":
            self._images = self.fixed_images
            return
        if self.placement == "fresh":
            offsets = draw_offsets(len(self.digits), self.max_offset, rng)
        else:
            offsets = centre_offsets(len(self.digits), self.canvas)
        self._images = place(self.digits, offsets, self.canvas)
        add_clutter(self._images, self.digits, *self.clutter, rng)

    def __getitem__(self, index: int):
        epoch, step = divmod(index, self.steps_per_epoch)
        epoch += self.first_epoch
        if epoch != self._epoch:
            self._prepare(epoch)
            self._epoch = epoch
        batch = self._order[step * self.batch_size:(step + 1) * self.batch_size]
        return datasets.as_input(self._images[batch]), self.labels[batch]


def make_deterministic(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        # The one backend-specific line: TensorFlow may otherwise reorder float sums between runs.
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


_cluster: list[bool] = []  # whether this process joined a cluster of hosts


def devices_scope(exp: Experiment) -> contextlib.AbstractContextManager:
    """Where the model is built and trained: by default Keras' first device; with `data_parallel`, every
    device of the backend's kind (GPUs, else CPUs), each computing its share of every batch on a copy of
    the weights. Keras' DataParallel on JAX; its TensorFlow backend has none yet, so tf.distribute's
    MirroredStrategy there, the second backend-specific line."""
    if not exp.data_parallel:
        return contextlib.nullcontext()
    if keras.backend.backend() == "jax" and "KERAS_DISTRIBUTION_NUM_PROCESSES" in os.environ and not _cluster:
        # Several hosts, one process each, as their launcher's environment says (README, Scaling out);
        # once per process, before JAX computes anything
        keras.distribution.initialize()
        _cluster.append(True)
    devices = keras.distribution.list_devices()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy([f"/{device}" for device in devices]).scope()
    return keras.distribution.DataParallel(devices=devices).scope()


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


def native_bfloat16() -> bool:
    """Whether Keras computes on a CPU with bfloat16 arithmetic of its own (AVX-512 BF16 or AMX)."""
    if not keras.distribution.list_devices()[0].lower().startswith("cpu"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: no way to tell, so the safe choice
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def dtype_policy(exp: Experiment) -> str:
    """'auto' is mixed bfloat16 where the CPU computes it natively (our CNNs train 1.5-2x faster,
    benchmarks/cnn_levers.py) and float32 elsewhere, where bfloat16 is emulated and slower."""
    if exp.precision == "auto":
        return "mixed_bfloat16" if native_bfloat16() else "float32"
    return exp.precision


def compiled_model(exp: Experiment, input_shape: tuple[int, ...], steps_per_epoch: int) -> keras.Model:
    # Layers take the policy when built; the saved model keeps it, so evaluation computes alike.
    keras.mixed_precision.set_global_policy(dtype_policy(exp))
    model = models.build(exp.model, input_shape)
    optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[exp.optimizer]
    model.compile(
        optimizer=optimizer(learning_rate(exp, steps_per_epoch)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def fresh_state(fingerprint: str) -> dict:
    return {"fingerprint": fingerprint, "epoch": 0, "steps": 0, "seconds": 0.0, "history": [],
            "best_val_loss": math.inf, "best_epoch": None, "stopped_by": "epochs", "variables": None}


def variables(model: keras.Model) -> list:
    """Everything a model's training depends on: its weights, the optimizer's state (step count,
    moments) and the layers' random-number state (dropout); Keras' own weight files omit the last."""
    return list(model.variables) + list(model.optimizer.variables)


def save_variables(model: keras.Model, path: Path) -> None:
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, *(v.numpy() for v in variables(model)))


def load_variables(model: keras.Model, path: Path, assign: bool = True) -> None:
    """The variables saved in `path` into `model`; with assign=False, only checked to fit it."""
    model.optimizer.build(model.trainable_variables)  # its variables exist only once built
    arrays = list(files.load_npz(path).values())
    targets = variables(model)
    if [a.shape for a in arrays] != [tuple(v.shape) for v in targets]:
        raise files.corrupt(path, "its variables do not match this experiment's model")
    if not all(np.all(np.isfinite(a)) for a in arrays if np.issubdtype(a.dtype, np.floating)):
        raise files.corrupt(path, "its variables are not all finite")
    for variable, array in zip(targets, arrays) if assign else ():
        variable.assign(array)


# Shells that `dvc repro` runs a stage's command in ($SHELL -c, or /bin/sh -c): dash and others stay
# alive as the trainer's parent when dvc is killed, so the watch goes past them.
SHELLS = {"sh", "dash", "bash", "zsh", "fish", "ksh", "mksh"}


def _process(pid: int) -> tuple[str, str, int, int] | None:
    """(name, state, parent pid, start time) of a process, from /proc; None if it is gone or /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return name, fields[0], int(fields[1]), int(fields[19])


def starter() -> tuple[int, int] | None:
    """(pid, start time) of the nearest ancestor that is not a shell running this command; None when
    there is none to watch (started by init, or no /proc: the watch is then off)."""
    pid = os.getppid()
    while pid > 1 and (process := _process(pid)) is not None:
        if process[0] not in SHELLS or process[2] <= 1:
            return pid, process[3]
        pid = process[2]
    return None


def alive(pid: int, started: int) -> bool:
    """Whether the process `pid` that started at `started` still runs (not a zombie, not a new one with its pid)."""
    process = _process(pid)
    return process is not None and process[3] == started and process[1] not in "ZX"


class Checkpoints(keras.callbacks.Callback):
    """After every epoch, every variable of the run (see `variables`) and the run's state (epoch,
    steps, history, stopping rules) go to data/checkpoints/<experiment>/.

    Hand-written, not keras.callbacks.BackupAndRestore: that one overwrites its weights file, then
    its epoch file, so a kill between the two resumes the wrong epoch (tests/test_training.py shows
    it); it leaves out the dropout's random state; and it resumes a backup made with other params.
    Here every epoch's variables get a new file, and state.json, written last and atomically,
    names the one it belongs to.
    """

    def __init__(self, root: Path, name: str, fingerprint: str):
        super().__init__()
        self.root, self.folder, self.fingerprint = root, paths.inside(root, name), fingerprint
        self.state_file = self.folder / "state.json"
        self.state = fresh_state(fingerprint)
        self.lock = None
        # The process that started this run (`dvc repro`, a terminal): once it has gone, nobody waits for the run.
        self.starter = starter()

    def take(self) -> None:
        """Refuse a checkpoint folder that is a link, and one that another trainer is using (one trainer
        per folder: a lock file beside it, held until this process ends)."""
        files.check_no_links(self.folder)
        if self.lock is not None:
            return
        lock_file = paths.inside(self.root, f"{self.folder.name}.lock")
        files.check_no_links(lock_file)
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(lock_file, "a+")  # noqa: SIM115 (held open until the process ends: that is the lock)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()[:20] or "unknown"
            lock.close()
            raise StageError(f"another training run (process {holder}) is using {self.folder}: wait for it to end, "
                             f"or stop it (`kill {holder}`), then run this again") from None
        with contextlib.suppress(OSError):  # the pid only names the holder in the message above; a full disk
            lock.truncate(0)                # fails at the checkpoint's own write, with its name
            lock.write(str(os.getpid()))
            lock.flush()
        self.lock = lock

    def resume(self, model: keras.Model) -> dict:
        """Load the last epoch's variables into `model` if they were made with the same params and
        data; return the run's state (a fresh one when there is nothing to resume). A damaged
        checkpoint is moved aside, with a warning, and the run starts from scratch."""
        self.take()
        self.state = fresh_state(self.fingerprint)
        if not self.folder.exists():
            return self.state
        files.check_tree(self.folder)
        if not self.state_file.exists():
            return self.state
        try:
            saved = files.read_json(self.state_file, schema=schemas.CheckpointState)
            if saved["fingerprint"] != self.fingerprint:
                print(f"train: discarding checkpoint in {self.folder}: made with other params or data")
                self.clear()
                return self.state
            if saved["best_epoch"] is not None:
                load_variables(model, self.folder / "best.npz", assign=False)
            load_variables(model, self.folder / saved["variables"])
        except files.InputError as error:
            self.set_aside(str(error).partition(": run `dvc repro")[0])
            return self.state
        self.state = saved
        return saved

    def set_aside(self, reason: str) -> None:
        """Move a damaged checkpoint into <folder>/damaged/ (an earlier one there is replaced)."""
        damaged = self.folder / "damaged"
        shutil.rmtree(damaged, ignore_errors=True)
        entries = [entry for entry in self.folder.iterdir() if entry.name != "damaged"]
        damaged.mkdir()
        for entry in entries:
            entry.rename(damaged / entry.name)
        print(f"train: warning: {reason}; moved the checkpoint to {damaged}/ and training starts from scratch",
              file=sys.stderr)

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1:04d}.npz"
        save_variables(self.model, self.folder / name)
        if self.state["best_epoch"] == epoch + 1:
            save_variables(self.model, self.folder / "best.npz")
        files.write_json(self.state_file, self.state | {"variables": name})
        for old in self.folder.glob("epoch-*.npz"):
            if old.name != name:
                old.unlink()
        if self.starter is not None and not alive(*self.starter):
            raise StageError(f"the process that started this run (pid {self.starter[0]}, e.g. `dvc repro`) has gone: "
                             f"stopped after epoch {epoch + 1}, whose checkpoint is kept; run it again to continue")

    def restore_best(self, model: keras.Model) -> None:
        load_variables(model, self.folder / "best.npz")

    def clear(self) -> None:
        files.remove_tree(self.folder, self.root)
        if self.lock is not None:  # removed while held: no trainer waits for it (LOCK_NB), none is left behind
            Path(self.lock.name).unlink(missing_ok=True)
            self.lock.close()
            self.lock = None


class StoppingRules(keras.callbacks.Callback):
    """Counts steps and epochs into the run's state and stops training at the first rule that fires.

    Rules: a non-finite or exploding loss ('diverged'), `max_steps`, `max_seconds`,
    `target_accuracy` (validation), `patience` epochs without a lower validation loss
    ('early_stopping'); otherwise all `epochs` run ('epochs'). Hand-written, not Keras'
    TerminateOnNaN and EarlyStopping: the run must record which rule fired, and EarlyStopping
    forgets its best epoch and patience count whenever fit starts, so a resumed run would stop
    at another epoch (tests/test_training.py shows it).
    """

    def __init__(self, exp: Experiment, state: dict):
        super().__init__()
        self.exp, self.state = exp, state

    def stop(self, reason: str) -> None:
        self.state["stopped_by"] = reason
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
        state = self.state
        if state["stopped_by"] == "diverged" or logs["loss"] > EXPLODED_LOSS:
            return self.stop("diverged")
        state["history"].append({"train/loss": logs["loss"], "train/accuracy": logs["accuracy"],
                                 "val/loss": logs["val_loss"], "val/accuracy": logs["val_accuracy"]})
        state |= {"epoch": epoch + 1, "seconds": time.perf_counter() - self.started}
        if logs["val_loss"] < state["best_val_loss"]:
            state |= {"best_val_loss": logs["val_loss"], "best_epoch": epoch + 1}
        if self.exp.target_accuracy and logs["val_accuracy"] >= self.exp.target_accuracy:
            self.stop("target_accuracy")
        elif self.exp.patience and epoch + 1 - state["best_epoch"] >= self.exp.patience:
            self.stop("early_stopping")


def fingerprint(exp: Experiment, data_file: Path) -> str:
    """What a checkpoint must match to be resumed: the experiment's params and its data file."""
    stat = data_file.stat()
    return hashlib.sha256(f"{exp.model_dump()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def fit(exp: Experiment, data: dict[str, np.ndarray], checkpoints: Checkpoints,
        watch=lambda state: []) -> tuple[keras.Model, dict]:
    """Train the experiment's model, resuming from `checkpoints` if they match. Returns the model and
    the run's state; its `stopped_by` says 'diverged' if training broke down (no weights worth keeping).
    `watch(state)` gives the callbacks that show the run as it goes (stages/live.py)."""
    devices = devices_scope(exp)  # before anything computes: a cluster must be joined first
    make_deterministic(exp.seed)
    batches = TrainBatches.of(exp, data)
    x_val, y_val = datasets.as_input(data["x_val"]), data["y_val"].astype(np.int32)
    with devices:
        model = compiled_model(exp, x_val.shape[1:], batches.steps_per_epoch)
        state = checkpoints.resume(model)
        if state["epoch"]:
            print(f"train: resuming {exp.name} after epoch {state['epoch']} of {exp.epochs}")
        batches.first_epoch = state["epoch"]
        if state["epoch"] < exp.epochs and state["stopped_by"] == "epochs":
            model.fit(batches, steps_per_epoch=batches.steps_per_epoch, epochs=exp.epochs,
                      initial_epoch=state["epoch"], validation_data=(x_val, y_val),
                      validation_batch_size=VALIDATION_BATCH, shuffle=False,
                      callbacks=[StoppingRules(exp, state), checkpoints, *watch(state)],
                      verbose=1 if sys.stdout.isatty() else 0)
        if exp.patience and state["stopped_by"] != "diverged" and state["best_epoch"] != state["epoch"]:
            checkpoints.restore_best(model)
            print(f"train: restored the weights of epoch {state['best_epoch']} (lowest validation loss)")
    return model, state


def save_model(model: keras.Model, path: Path) -> None:
    """`model.save` without what Keras stamps in that differs between identical runs (the save
    date, file times, memory addresses as object ids), so that a rerun which trains the same
    weights writes the same bytes and DVC has nothing downstream to redo."""
    model.save(path)
    with zipfile.ZipFile(path) as saved:
        entries = [(info, saved.read(info)) for info in saved.infolist()]
    with zipfile.ZipFile(path, "w") as out:
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
