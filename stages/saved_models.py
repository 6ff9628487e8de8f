"""Reading the models the train stage saved, for the stages that only run them.

Kept apart from models.py so that evaluate, invariance and report do not depend on how
a model is built, and a change to how a file is read does not retrain every model.
"""

import zipfile

import keras

from stages import files, layers  # noqa: F401 (registers the layers cnn_invariant is built of)

CLASSES = 10


def load(path, kind: str | None = None, input_shape: tuple[int, ...] | None = None) -> keras.Model:
    """A model saved by the train stage, for inference; a missing or damaged file, or one that is not a
    `kind` model (models.py's name for it) taking `input_shape` images, is a one-line error."""
    files.check_no_links(path)
    with files.reading(path, ValueError, OSError, KeyError, EOFError, TypeError, AttributeError, zipfile.BadZipFile):
        if not zipfile.is_zipfile(path):  # else Keras reports a cut-short archive as "File not found"
            raise ValueError("not a complete .keras archive")
        model = keras.saving.load_model(path, compile=False)
    found = f"model {model.name!r} for {shape(model.input_shape)} images, {model.output_shape[-1]} outputs"
    if (kind is not None and model.name != kind) or (input_shape is not None and
                                                     tuple(model.input_shape[1:]) != tuple(input_shape)) \
            or model.output_shape[-1] != CLASSES:
        wanted = f"model {(kind or model.name)!r} for {shape((None, *input_shape)) if input_shape else 'its'} " \
                 f"images, {CLASSES} outputs"
        raise files.invalid(path, f"{found}, expected {wanted}")
    return model


def shape(input_shape) -> str:
    return "x".join(map(str, input_shape[1:]))
