"""translated-mnist: the pipeline's stages, one module each, run as `python -m stages.<name>`.

TensorFlow reads its options from the environment once, when it is imported, so they are set here:
Python runs this file before any stage module, and so before any of them imports Keras. Code of
your own (a notebook, a benchmark) that imports Keras before `stages` gets TensorFlow's defaults.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) would bury our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
# others, such as AVX2-only ones, its fallback kernels train our CNN 1.85x slower
# (benchmarks/cnn_levers.py, `oneDNN off`). Still deterministic under op determinism.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# A Keras backend that is unknown or not installed would fail at the first `import keras` with a traceback.
from stages import cli  # noqa: E402  (after the options above: cli imports nothing of TensorFlow's)

if (_problem := cli.backend_problem()) is not None:
    print(f"error: {_problem}", file=__import__("sys").stderr)
    raise SystemExit(2)
