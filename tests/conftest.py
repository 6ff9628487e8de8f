"""Tiny synthetic datasets in the translate stage's format, so training tests run in seconds."""

import numpy as np
import pytest

from stages import files, translate
from stages.params import Experiment


def pytest_report_header():
    import keras

    return f"keras backend: {keras.backend.backend()}"


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten fixed random 28x28 prototypes plus noise: learnable, but not trivially."""
    prototypes = np.random.default_rng(0).integers(0, 2, size=(10, 28, 28)) * 200
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    noise = rng.integers(0, 56, size=(n, 28, 28))
    return (prototypes[labels] + noise).astype(np.uint8), labels


def write_datasets(folder, n_train=600, n_val=200, n_test=200, canvas=32):
    """Write centred.npz and translated.npz as the translate stage would."""
    parts = {name: synthetic_digits(n, seed) for name, n, seed in
             (("train", n_train, 1), ("val", n_val, 2), ("test", n_test, 3))}
    from stages.params import TranslateParams

    files.save_npz(folder / "centred.npz", **translate.centred(parts))
    files.save_npz(folder / "translated.npz", **translate.translate(parts, TranslateParams(canvas, "full", 0)))


def experiment(**changes) -> Experiment:
    settings = dict(name="tiny", data="translated", placement="fixed", model="linear", optimizer="adam",
                    learning_rate=0.01, schedule="constant", warmup_epochs=0, batch_size=50, epochs=2,
                    max_steps=None, patience=None, target_accuracy=None, max_seconds=None, seed=1)
    return Experiment(**(settings | changes))


@pytest.fixture
def tiny_data(tmp_path):
    write_datasets(tmp_path)
    return tmp_path
