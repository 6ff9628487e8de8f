import json
import time

import keras
import numpy as np
import pytest

from stages import cli, datasets, files, train
from tests.conftest import experiment


def run(exp, folder, live=None, checkpoints=None):
    live = live or FakeLive()
    checkpoints = train.Checkpoints(folder, checkpoints or "checkpoints", "print")
    model, summary = train.train(exp, datasets.files.load_npz(folder / f"{exp.data}.npz"), checkpoints, live)
    return model, summary, live


class FakeLive:
    """Collects what DVCLive would log."""

    def __init__(self):
        self.steps = [{}]

    def log_metric(self, name, value):
        self.steps[-1][name] = value

    def next_step(self):
        self.steps.append({})


def test_short_training_beats_chance_clearly(tiny_data):
    for model_name in ("linear", "mlp"):
        model, summary, _ = run(experiment(model=model_name, epochs=3), tiny_data)
        data = files.load_npz(tiny_data / "translated.npz")
        accuracy = np.mean(np.argmax(model.predict(datasets.as_input(data["x_test"]), verbose=0), axis=1) == data["y_test"])
        assert accuracy > 0.5, model_name
        assert summary["epochs"] == 3 and summary["steps"] == 3 * 12 and summary["stopped_by"] == "epochs"


def test_two_runs_with_the_same_seed_are_identical(tiny_data):
    exp = experiment(model="cnn", placement="fresh", epochs=1, max_steps=6)
    runs = []
    for name in ("a", "b"):
        keras.backend.clear_session()  # layer names count up within a process; a rerun is a new process
        model, _, live = run(exp, tiny_data, checkpoints=f"checkpoints-{name}")
        train.save_model(model, tiny_data / f"{name}.keras")
        runs.append((model, live))
        time.sleep(1.1)  # the save time Keras records has a resolution of one second
    (a, la), (b, lb) = runs
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    assert la.steps == lb.steps
    # and the saved files are byte for byte the same, so a rerun changes nothing downstream
    assert (tiny_data / "a.keras").read_bytes() == (tiny_data / "b.keras").read_bytes()
    reloaded = keras.saving.load_model(tiny_data / "a.keras")
    assert all(np.array_equal(wa, wr) for wa, wr in zip(a.get_weights(), reloaded.get_weights()))


def test_resume_continues_from_the_last_finished_epoch(tiny_data, monkeypatch):
    exp = experiment(epochs=3)
    save = train.Checkpoints.save

    def killed_after_epoch_two(self, model, state):
        save(self, model, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train.Checkpoints, "save", killed_after_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(exp, tiny_data)
    state = json.loads((tiny_data / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2 and state["steps"] == 24

    monkeypatch.setattr(train.Checkpoints, "save", save)
    fits = []
    monkeypatch.setattr(train.keras.Model, "fit", record_fit(fits, train.keras.Model.fit))
    _, summary, live = run(exp, tiny_data)
    assert fits == [2]  # one fit, starting at epoch index 2: only the third epoch ran
    assert summary["epochs"] == 3 and summary["steps"] == 36
    assert len([s for s in live.steps if s]) == 3  # the log replays the two saved epochs, then adds the third


def record_fit(calls, fit):
    def wrapper(self, *args, **kwargs):
        calls.append(kwargs["initial_epoch"])
        return fit(self, *args, **kwargs)
    return wrapper


def test_a_checkpoint_of_other_params_is_not_resumed(tiny_data):
    exp = experiment(epochs=1)
    checkpoints = train.Checkpoints(tiny_data, "checkpoints", "old-fingerprint")
    _, state = checkpoints.load()
    checkpoints.save(train.compile_model(train.models.build("linear", (32, 32, 1)), exp, 12), state | {"epoch": 1})
    other = train.Checkpoints(tiny_data, "checkpoints", "new-fingerprint")
    model, state = other.load()
    assert model is None and state["epoch"] == 0


def test_diverging_training_stops_at_once_with_a_clear_error(tiny_data):
    exp = experiment(optimizer="sgd", learning_rate=1e38, epochs=5)
    with pytest.raises(cli.StageError, match="diverged.*learning_rate"):
        run(exp, tiny_data)
    assert not (tiny_data / "checkpoints").exists()


@pytest.mark.parametrize("rule, changes, check", [
    ("max_steps", {"max_steps": 17, "epochs": 5}, lambda s: s["steps"] == 17 and s["epochs"] == 2),
    ("target_accuracy", {"target_accuracy": 0.3, "epochs": 8}, lambda s: s["epochs"] < 8),
    ("max_seconds", {"max_seconds": 1e-6, "epochs": 5}, lambda s: s["steps"] == 1),
])
def test_each_stopping_rule_ends_training_and_says_so(tiny_data, rule, changes, check):
    _, summary, _ = run(experiment(**changes), tiny_data)
    assert summary["stopped_by"] == rule and check(summary)


class FakeCheckpoints:
    def __init__(self):
        self.best_saved_at = []

    def save_best(self, model):
        self.best_saved_at.append(model.epoch)

    def save(self, model, state):
        pass


class FakeModel:
    stop_training = False
    epoch = None


def test_early_stopping_fires_after_patience_epochs_without_a_lower_validation_loss():
    checkpoints, model = FakeCheckpoints(), FakeModel()
    state = {"epoch": 0, "steps": 0, "seconds": 0.0, "history": [], "best_val_loss": float("inf"),
             "best_epoch": None, "stopped_by": "epochs"}
    supervisor = train.Supervisor(experiment(patience=2), state, checkpoints, FakeLive())
    supervisor.set_model(model)
    supervisor.on_train_begin()
    for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.55, 0.4]):
        model.epoch = epoch + 1
        supervisor.on_epoch_end(epoch, {"loss": 1.0, "accuracy": 0.5, "val_loss": val_loss, "val_accuracy": 0.5})
        if model.stop_training:
            break
    assert supervisor.stopped_by == "early_stopping"
    assert state["epoch"] == 4 and state["best_epoch"] == 2
    assert checkpoints.best_saved_at == [1, 2]


def test_fresh_placement_draws_new_offsets_every_epoch_and_keeps_labels(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    batches = datasets.TrainBatches(data["x_train"], data["y_train"], data["offsets_train"], "fresh", 600, 5,
                                    int(data["max_offset"]))
    (x0, y0), (x1, y1) = batches[0], batches[1]  # one batch = one whole epoch here
    assert not np.array_equal(x0, x1)
    assert sorted(y0) == sorted(y1) == sorted(data["y_train"])
    # the same pixels, moved: every image keeps its ink
    assert np.allclose(np.sort(x0.sum(axis=(1, 2, 3))), np.sort(x1.sum(axis=(1, 2, 3))), rtol=1e-5)
    again = datasets.TrainBatches(data["x_train"], data["y_train"], data["offsets_train"], "fresh", 600, 5,
                                  int(data["max_offset"]))
    again.first_epoch = 1
    assert np.array_equal(again[0][0], x1)  # epoch 1's data do not depend on what came before


def test_centre_placement_puts_every_digit_in_the_middle(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    batches = datasets.TrainBatches(data["x_train"], data["y_train"], data["offsets_train"], "centre", 600, 5, 4)
    x, _ = batches[0]
    margin = (32 - 28) // 2
    inside = x[:, margin:margin + 28, margin:margin + 28].sum()
    assert np.isclose(inside, x.sum())


def test_every_placement_feeds_float32_images_scaled_to_one(tiny_data):
    data = files.load_npz(tiny_data / "translated.npz")
    for placement in ("fixed", "fresh", "centre"):
        batches = datasets.TrainBatches(data["x_train"], data["y_train"], data["offsets_train"], placement, 600, 5,
                                        int(data["max_offset"]))
        x, y = batches[0]
        assert x.dtype == np.float32 and x.shape == (len(y), 32, 32, 1), placement
        assert x.min() == 0.0 and 200 / 255 <= x.max() <= 1.0, placement  # the tiny digits' ink is 200..255
        if placement == "fixed":
            assert np.array_equal(x, datasets.as_input(data["x_train"][batches._order]))
