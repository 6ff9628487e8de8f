import json

import keras
import numpy as np
import pytest

from stages import datasets, files, training, translate
from stages.params import Placing
from tests.conftest import experiment, synthetic_digits


def run(exp, folder, checkpoints="checkpoints", fingerprint=None):
    """Train `exp` on the tiny data in `folder`, as a new process would: the model and the run's state."""
    keras.backend.clear_session()  # layer names count up within a process; a rerun is a new process
    data = files.load_npz(folder / f"{exp.data}.npz")
    return training.fit(exp, data, training.Checkpoints(folder, checkpoints, fingerprint or repr(exp.model_dump())))


def test_short_training_beats_chance_clearly(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    for model_name in ("linear", "mlp"):
        model, state = run(experiment(model=model_name, epochs=3), tiny_data)
        predicted = np.argmax(model.predict(datasets.as_input(data["x_test"]), verbose=0), axis=1)
        accuracy = np.mean(predicted == data["y_test"])
        assert accuracy > 0.5, model_name
        assert state["epoch"] == 3 and state["steps"] == 3 * 12 and state["stopped_by"] == "epochs"
        assert len(state["history"]) == 3 and set(state["history"][0]) == {"train/loss", "train/accuracy",
                                                                           "val/loss", "val/accuracy"}


def test_two_runs_with_the_same_seed_save_the_same_bytes(tiny_data):
    exp = experiment(model="cnn", placement="fresh", epochs=1, max_steps=6)
    runs = []
    for name in ("a", "b"):
        model, state = run(exp, tiny_data, checkpoints=f"checkpoints-{name}")
        training.save_model(model, tiny_data / f"{name}.keras")
        runs.append((model, state))
    (a, sa), (b, sb) = runs
    assert all(np.array_equal(wa, wb) for wa, wb in zip(a.get_weights(), b.get_weights()))
    assert sa["history"] == sb["history"]
    # the saved files are byte for byte the same, so a rerun changes nothing downstream
    assert (tiny_data / "a.keras").read_bytes() == (tiny_data / "b.keras").read_bytes()
    reloaded = keras.saving.load_model(tiny_data / "a.keras")
    assert all(np.array_equal(wa, wr) for wa, wr in zip(a.get_weights(), reloaded.get_weights()))


class Killed(Exception):
    pass


def test_a_run_killed_after_an_epoch_resumes_to_the_same_bytes(tiny_data, monkeypatch):
    # the CNN has dropout: its random state must be resumed too, not only weights and optimizer
    exp = experiment(model="cnn", placement="fresh", epochs=3, batch_size=100)
    model, whole = run(exp, tiny_data, checkpoints="whole")
    training.save_model(model, tiny_data / "whole.keras")

    save = training.Checkpoints.on_epoch_end

    def killed_after_epoch_two(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch + 1 == 2:
            raise Killed

    monkeypatch.setattr(training.Checkpoints, "on_epoch_end", killed_after_epoch_two)
    with pytest.raises(Killed):
        run(exp, tiny_data)
    state = json.loads((tiny_data / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2 and state["steps"] == 12 and state["variables"] == "epoch-0002.npz"

    monkeypatch.setattr(training.Checkpoints, "on_epoch_end", save)
    fits = []
    fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, *a, **k: fits.append(k["initial_epoch"]) or fit(self, *a, **k))
    model, resumed = run(exp, tiny_data)
    training.save_model(model, tiny_data / "resumed.keras")
    assert fits == [2]  # one fit, from epoch index 2: only the third epoch ran
    assert resumed["history"] == whole["history"] and resumed["steps"] == whole["steps"] == 18
    assert (tiny_data / "resumed.keras").read_bytes() == (tiny_data / "whole.keras").read_bytes()


def test_keras_backup_and_restore_resumes_the_wrong_epoch_after_a_kill_between_its_two_writes(tmp_path, monkeypatch):
    """Why training.Checkpoints is hand-written: Keras' callback writes weights, then epoch."""
    from keras.src.callbacks import backup_and_restore

    x = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    y = (x.sum(axis=1) > 4).astype(np.int32)

    def fit(epochs_done_before_kill=None):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                  callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)])
        return model.get_weights()

    whole = fit()
    (tmp_path / "backup").rename(tmp_path / "whole-backup")
    open_file, opened = backup_and_restore.file_utils.File, []

    def killed_before_the_second_epoch_file(path, mode="r"):
        opened.append(mode)
        if opened.count("w") == 2:  # epoch 2's weights are on disk, its epoch number not yet
            raise Killed
        return open_file(path, mode)

    monkeypatch.setattr(backup_and_restore.file_utils, "File", killed_before_the_second_epoch_file)
    with pytest.raises(Killed):
        fit()
    monkeypatch.setattr(backup_and_restore.file_utils, "File", open_file)
    resumed = fit()
    assert not all(np.array_equal(a, b) for a, b in zip(whole, resumed))  # epoch 2 was trained twice


def test_a_checkpoint_of_other_params_is_not_resumed(tiny_data):
    run(experiment(epochs=1), tiny_data, fingerprint="old")
    assert (tiny_data / "checkpoints" / "state.json").exists()
    checkpoints = training.Checkpoints(tiny_data, "checkpoints", "new")
    model = training.compiled_model(experiment(), (32, 32, 1), 12)
    assert checkpoints.resume(model)["epoch"] == 0
    assert not (tiny_data / "checkpoints").exists()


@pytest.mark.parametrize("changes, why", [
    ({"optimizer": "sgd", "learning_rate": 1e38}, "the loss is not finite"),
    ({"model": "mlp", "learning_rate": 1e6}, "the loss is finite but far above a uniform guess's"),
])
def test_diverging_training_stops_and_says_so(tiny_data, changes, why):
    _, state = run(experiment(epochs=5, **changes), tiny_data)
    assert state["stopped_by"] == "diverged", why
    assert state["epoch"] <= 1


@pytest.mark.parametrize("rule, changes, check", [
    ("max_steps", {"max_steps": 17, "epochs": 5}, lambda s: s["steps"] == 17 and s["epoch"] == 2),
    ("target_accuracy", {"target_accuracy": 0.3, "epochs": 8}, lambda s: s["epoch"] < 8),
    ("max_seconds", {"max_seconds": 1e-6, "epochs": 5}, lambda s: s["steps"] == 1),
])
def test_each_stopping_rule_ends_training_and_says_so(tiny_data, rule, changes, check):
    _, state = run(experiment(**changes), tiny_data)
    assert state["stopped_by"] == rule and check(state)


class FakeModel:
    stop_training = False


def val_losses(rules, model, losses, first_epoch=0):
    """Feed `rules` one epoch per validation loss, as fit would; the epochs that ran."""
    rules.set_model(model)
    rules.on_train_begin()
    for epoch, val_loss in enumerate(losses, start=first_epoch):
        rules.on_epoch_end(epoch, {"loss": 1.0, "accuracy": 0.5, "val_loss": val_loss, "val_accuracy": 0.5})
        if model.stop_training:
            return epoch + 1
    return None


def test_early_stopping_fires_after_patience_epochs_and_survives_a_resume():
    losses = [0.9, 0.5, 0.6, 0.55, 0.4]
    state = training.fresh_state("fp")
    assert val_losses(training.StoppingRules(experiment(patience=2), state), FakeModel(), losses) == 4
    assert state["stopped_by"] == "early_stopping" and state["best_epoch"] == 2
    # the same run killed after epoch 3: a new process resumes from the saved state and stops at the same epoch
    saved = training.fresh_state("fp")
    assert val_losses(training.StoppingRules(experiment(patience=2), saved), FakeModel(), losses[:3]) is None
    saved = json.loads(json.dumps(saved))  # as state.json stores it
    resumed = training.StoppingRules(experiment(patience=2), saved)
    assert val_losses(resumed, FakeModel(), losses[3:], first_epoch=3) == 4 and saved["best_epoch"] == 2


def test_keras_early_stopping_forgets_its_best_epoch_when_fit_starts_again():
    """Why StoppingRules does patience itself: a resumed fit calls on_train_begin."""
    stopping = keras.callbacks.EarlyStopping(patience=2)
    stopping.set_model(FakeModel())
    stopping.on_train_begin()
    stopping.on_epoch_end(0, {"val_loss": 0.5})
    stopping.on_epoch_end(1, {"val_loss": 0.6})
    assert stopping.best == 0.5 and stopping.wait == 1
    stopping.on_train_begin()
    assert stopping.best is None and stopping.wait == 0


def test_fresh_placement_draws_new_offsets_every_epoch_and_keeps_labels(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    exp = experiment(placement="fresh", batch_size=600, seed=5)
    batches = training.TrainBatches.of(exp, data)
    (x0, y0), (x1, y1) = batches[0], batches[1]  # one batch = one whole epoch here
    assert not np.array_equal(x0, x1)
    assert sorted(y0) == sorted(y1) == sorted(data["y_train"])
    # the same pixels, moved: every image keeps its ink
    assert np.allclose(np.sort(x0.sum(axis=(1, 2, 3))), np.sort(x1.sum(axis=(1, 2, 3))), rtol=1e-5)
    again = training.TrainBatches.of(exp, data)
    again.first_epoch = 1
    assert np.array_equal(again[0][0], x1)  # epoch 1's data do not depend on what came before


def test_fresh_placement_of_a_cluttered_file_draws_new_clutter_around_the_clean_digits():
    parts = {"train": synthetic_digits(300, 1), "val": synthetic_digits(50, 2)}
    data = translate.translate(parts, Placing(canvas=48, offsets="full", clutter=4, clutter_size=8), 0, "c48")
    exp = experiment(placement="fresh", batch_size=300, seed=3)
    cluttered = training.TrainBatches.of(exp, data)
    assert np.array_equal(cluttered.digits, parts["train"][0])  # the clean digits, not cut from the canvas
    plain = training.TrainBatches.of(exp, {name: a for name, a in data.items() if name != "clutter"})
    (x0, y0), (x1, _) = cluttered[0], cluttered[1]  # one batch = one whole epoch here
    (p0, q0) = plain[0]
    assert np.array_equal(y0, q0) and (x0 >= p0).all()  # the same digits at the same offsets, clutter added
    assert ((x0 - p0).sum(axis=(1, 2, 3)) > 0).mean() > 0.5
    assert not np.array_equal(x0, x1)  # new offsets and new clutter every epoch


def test_centre_placement_puts_every_digit_in_the_middle(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    x, _ = training.TrainBatches.of(experiment(placement="centre", batch_size=600), data)[0]
    margin = (32 - 28) // 2
    inside = x[:, margin:margin + 28, margin:margin + 28].sum()
    assert np.isclose(inside, x.sum())


def test_every_placement_feeds_float32_images_scaled_to_one(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    for placement in ("fixed", "fresh", "centre"):
        batches = training.TrainBatches.of(experiment(placement=placement, batch_size=600), data)
        x, y = batches[0]
        assert x.dtype == np.float32 and x.shape == (len(y), 32, 32, 1), placement
        assert x.min() == 0.0 and 200 / 255 <= x.max() <= 1.0, placement  # the tiny digits' ink is 200..255
        if placement == "fixed":
            assert np.array_equal(x, datasets.as_input(data["x_train"][batches._order]))



@pytest.mark.parametrize("native, expected", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_precision_computes_in_bfloat16_only_where_the_cpu_has_it_and_the_saved_model_keeps_it(
        tiny_data, monkeypatch, native, expected):
    from stages import saved_models

    monkeypatch.setattr(training, "native_bfloat16", lambda: native)
    model, state = run(experiment(model="cnn", precision="auto", epochs=1), tiny_data)
    assert state["stopped_by"] == "epochs"
    conv = model.get_layer("conv")
    assert conv.dtype_policy.name == expected and conv.compute_dtype == expected.removeprefix("mixed_")
    assert conv.kernel.dtype == "float32"  # the weights stay float32 either way
    training.save_model(model, tiny_data / "saved.keras")
    assert saved_models.load(tiny_data / "saved.keras").get_layer("conv").dtype_policy.name == expected
    keras.mixed_precision.set_global_policy("float32")  # the global policy outlives the test otherwise


def test_float32_is_float32_whatever_the_cpu(monkeypatch):
    monkeypatch.setattr(training, "native_bfloat16", lambda: True)
    assert training.dtype_policy(experiment(precision="float32")) == "float32"
    assert training.dtype_policy(experiment(precision="mixed_bfloat16")) == "mixed_bfloat16"
