"""translated-mnist: the pipeline's stages, one module each, run as `python -m stages.<name>`.

TensorFlow reads its options from the environment once, when it is imported, so they are set here:
Python runs this file before any stage module, and so before any of them imports Keras. Code of
your own (a notebook, a benchmark) that imports Keras before `stages` gets TensorFlow's defaults.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# TensorFlow's C++ messages (CUDA probing on a CPU machine, a tf.data attribute its own ops do not
# know) would bury our own output; TF_CPP_MIN_LOG_LEVEL=0 shows them all again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
# others, such as AVX2-only ones, its fallback kernels train our CNN 1.85x slower
# (benchmarks/cnn_levers.py, `oneDNN off`). Still deterministic under op determinism.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# What TensorFlow's native libraries print while they load, before its logging has read
# TF_CPP_MIN_LOG_LEVEL (absl writes every message to stderr until it is initialised): notices, not errors.
LOADING_NOTICES = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called|"
                             r"I\d{4} [\d:.]+ +\d+ (port\.cc|cudart_stub\.cc):\d+\] ")


@contextlib.contextmanager
def _stderr_without_loading_notices():
    """Run the block with file descriptor 2 (what C++ code writes to) captured, then pass on every line
    of it but TensorFlow's loading notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not LOADING_NOTICES.match(line):
                    sys.stderr.write(line)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports `tensorflow` (which `import keras` does on its TensorFlow backend) with its loading notices
    left out; once, then it steps aside. A finder, not a wrapper around `import keras`: a stage imports
    Keras where it needs it, through whichever shared module comes first. It steps aside only when the
    import runs: a mere lookup (`importlib.util.find_spec`, as cli.backend_problem does) leaves it in place."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # the lookup below would otherwise come back here
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def quietly(module):
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                with _stderr_without_loading_notices():
                    exec_module(module)

            spec.loader.exec_module = quietly
        return spec


if "tensorflow" not in sys.modules and os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0":
    sys.meta_path.insert(0, _QuietTensorFlowImport())


# A Keras backend that is unknown or not installed would fail at the first `import keras` with a traceback.
from stages import cli  # noqa: E402  (after the options above: cli imports nothing of TensorFlow's)

if (_problem := cli.backend_problem()) is not None:
    print(f"error: {_problem}", file=__import__("sys").stderr)
    raise SystemExit(2)
