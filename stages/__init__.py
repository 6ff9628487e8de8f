"""translated-mnist: the pipeline's stages, one module each, run as `python -m stages.<name>`."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) would bury our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX
# (2.9 release notes); on others, such as AVX2-only ones, its fallback kernels train our CNN
# 1.85x slower (benchmarks/cnn_levers.py). Still deterministic under op determinism.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
