"""The speed measurements: a DVC pipeline of their own (benchmarks/dvc.yaml, `make benchmarks`), each stage a
module run as `python -m benchmarks.<name>` from the repository's root, writing under reports/benchmarks/ and
the speed page reports/speed.md. The main pipeline never reads them.
"""

import stages  # noqa: F401  first, before any module here imports TensorFlow: it sets TensorFlow's options
