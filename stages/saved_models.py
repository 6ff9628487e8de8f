"""Reading the models the train stage saved, for the stages that only run them.

Kept apart from models.py so that evaluate, invariance and report do not depend on how
a model is built, and a change to how a file is read does not retrain every model.
"""

import zipfile

import keras

from stages import files


def load(path) -> keras.Model:
    """A model saved by the train stage, for inference; a missing or damaged file is a one-line error."""
    with files.reading(path, ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile):
        if not zipfile.is_zipfile(path):  # else Keras reports a cut-short archive as "File not found"
            raise ValueError("not a complete .keras archive")
        return keras.saving.load_model(path, compile=False)
