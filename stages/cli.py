"""The one way a stage starts and fails: its arguments checked, every failure a user can cause or
meet (bad params, a missing or corrupt input, a full disk, no permission, too little memory) one
line on stderr and a non-zero exit. Anything else is a bug and keeps its traceback.

Set STAGES_TRACEBACK=1 to see the traceback behind a one-line error too.
"""

import argparse
import errno
import importlib.util
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence


class StageError(Exception):
    """An expected failure (bad params, no data source, diverged training): one line, no traceback."""


class Terminated(BaseException):
    """SIGTERM (a CI timeout, `kill`): raised like Ctrl-C, so that every write in progress is cleaned up."""


MAX_MESSAGE = 600  # characters: an error is one line a person reads, whatever value it quotes

# What to lower when a stage runs out of memory: what it holds most of.
MEMORY_ADVICE = {"download": "close other programs: reading the downloaded files needs about 1 GB",
                 "translate": "close other programs, or lower translate.canvas in params.yaml",
                 "train": "close other programs, or lower the experiment's batch_size or translate.canvas",
                 "seeds": "close other programs, or lower the experiment's batch_size or translate.canvas",
                 "invariance": "close other programs, or lower invariance.test_digits in params.yaml"}

# Keras backends, by the package each needs, and how to install the ones the project declares.
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy", "openvino": "openvino"}
INSTALL = {"jax": "`.venv/bin/pip install -e '.[jax]'`", "tensorflow": "`make install`"}


def keras_backend() -> str:
    """The backend Keras will load: $KERAS_BACKEND, else ~/.keras/keras.json's, else TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = os.path.join(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"), "keras.json")
    try:
        with open(config) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def backend_problem() -> str | None:
    """Why Keras cannot load its backend here, in one line; None when it can."""
    backend = keras_backend()
    if backend not in BACKENDS:
        return (f"KERAS_BACKEND = {backend[:40]!r}: not a Keras backend; use tensorflow (the default) or jax "
                "(unset KERAS_BACKEND for TensorFlow)")
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        how = INSTALL.get(backend, f"`.venv/bin/pip install {backend}`")
        return (f"KERAS_BACKEND = {backend!r}, but {backend} is not installed in this environment: install it with "
                f"{how}, or unset KERAS_BACKEND to use TensorFlow")
    return None


# What a failed write or read of the file system means for the user, by errno.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error(error: OSError, path) -> StageError | None:
    """The one-line error for a file-system failure a user can meet, or None for anything else."""
    if error.errno in DISK_FULL:
        return StageError(f"no space left on the device for {path}: free some space (`df -h`), then run the "
                          "stage again; no output was overwritten")
    if error.errno in NO_PERMISSION:
        return StageError(f"no permission to write {path} ({error.strerror}): check the folder's owner and "
                          "mode, then run the stage again")
    return None


# What a stage's parameter is, for --help; a parameter not listed here is shown by its name only.
ARGUMENTS = {"experiment": "the name of an experiment under `experiments:` in params.yaml"}


def module_name(main: Callable) -> str:
    """'stages.train' for stages/train.py's main, also when it runs as '__main__' (`python -m`: its spec knows)."""
    module = sys.modules[main.__module__]
    return module.__spec__.name if module.__spec__ else main.__module__


def parser(main: Callable) -> argparse.ArgumentParser:
    """The stage's command line: its module's docstring as the description, one positional per parameter of main."""
    module = sys.modules[main.__module__]
    parse = argparse.ArgumentParser(prog=f"python -m {module_name(main)}", description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in inspect.signature(main).parameters:
        parse.add_argument(name, help=ARGUMENTS.get(name))
    return parse


def run(main: Callable[..., None], argv: Sequence[str] | None = None) -> int:
    """Call `main` with the command line's arguments (one per parameter) and return the exit code."""
    stage = module_name(main).rpartition(".")[2]
    try:
        args = list(vars(parser(main).parse_args(argv)).values())  # None: sys.argv[1:]
    except SystemExit as stop:  # --help (0) or a wrong command line (2, with the usage on stderr)
        return stop.code
    label = "@".join([stage, *args])  # as DVC names the stage: train@cnn_translated
    previous = signal.signal(signal.SIGTERM, _terminate)
    resumes = " (training resumes from its last epoch)" if stage in ("train", "seeds") else ""
    try:
        main(*args)
    except StageError as error:
        return fail(label, str(error))
    except MemoryError:
        return fail(label, "not enough memory: " + MEMORY_ADVICE.get(stage, "close other programs"))
    except OSError as error:
        known = os_error(error, error.filename or "an output")
        if known is None:
            raise
        return fail(label, str(known))
    except KeyboardInterrupt:
        print(f"\n{label}: interrupted; run it again to continue{resumes}", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{label}: terminated (SIGTERM); no output was left half-written; run it again to continue{resumes}",
              file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum, frame):
    raise Terminated()


def fail(label: str, message: str) -> int:
    if os.environ.get("STAGES_TRACEBACK"):
        import traceback

        traceback.print_exc()
    message = " ".join(message.split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
    print(f"error: {label}: {message}", file=sys.stderr)
    return 2
