"""translated-mnist: the pipeline's stages, one module each, run as `python -m stages.<name>`."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) would bury our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
