"""The model kinds, one table: what the rest of the pipeline needs to know of each architecture
without importing Keras. A new kind is an entry here and a builder of the same name in models.py
(tests/test_models.py holds the two equal); params.yaml's allowed `model` values, the memory
estimate and the report's names and figures follow from it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    label: str  # how the report names it
    # For params.memory_needed: float32 activations kept per input pixel of each image in a batch, and
    # the weights as weights_per_pixel * pixels + fixed_weights.
    activations_per_pixel: int
    weights_per_pixel: int
    fixed_weights: int
    # The report's figures beyond those of every model: "weights" (one weight map per class, of the
    # layer named 'weights'), "conv" (the kernels and feature maps of the layer named 'conv').
    figures: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    "linear": Kind("linear model", 1, 10, 0, ("weights",)),
    "mlp": Kind("MLP", 1, 500, 0),
    "cnn": Kind("CNN", 32 + 8 + 1, 8 * 1024, 0, ("conv",)),
    "cnn_gap": Kind("global-pooling CNN", 32 + 16 + 8 + 1, 0, 100_000, ("conv",)),
    # cnn_bn: each block keeps its convolution's output, then three maps a quarter that size (pooled,
    # normalised, activated), on a grid a quarter the size of the block before
    "cnn_bn": Kind("batch-normalised CNN", 24 + 3 * 6 + 12 + 3 * 3 + 4 + 3 + 5, 0, 100_000, ("conv",)),
    # cnn_invariant: as cnn_bn, but each pooling block also keeps its padded input and four full-size
    # maps (convolution, padded, pooled at every position, its four grids stacked)
    "cnn_invariant": Kind("shift-invariant CNN", 1 + 4 * 24 + 3 * 6 + 6 + 4 * 12 + 3 * 3 + 3 + 4 * 4 + 3 + 1 + 5,
                          0, 100_000, ("conv",)),
}
