"""The architectures, one small function each, in backend-neutral Keras 3.

Every model takes (height, width, 1) float32 images in [0, 1] and returns logits
for the ten digits; the softmax lives in the loss, as in the original notebook.
"""

import keras
from keras import layers

from stages.layers import CircularPad, PolyphaseDown

NUM_CLASSES = 10


def linear(input_shape: tuple[int, int, int]) -> keras.Model:
    """Softmax regression: one weight map per digit (the notebook's first model)."""
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Flatten(),
        layers.Dense(NUM_CLASSES, name="weights"),
    ], name="linear")


def mlp(input_shape: tuple[int, int, int]) -> keras.Model:
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Flatten(),
        layers.Dense(500, activation="relu"),
        layers.Dense(NUM_CLASSES),
    ], name="mlp")


def cnn(input_shape: tuple[int, int, int]) -> keras.Model:
    """The notebook's CNN: one 5x5 convolution, one pooling, then a large dense layer."""
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(32, 5, padding="same", activation="relu", name="conv"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(NUM_CLASSES),
    ], name="cnn")


def cnn_gap(input_shape: tuple[int, int, int]) -> keras.Model:
    """Convolutions all the way, then a global max over positions: nothing after it knows where."""
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(32, 5, padding="same", activation="relu", name="conv"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"),
        layers.GlobalMaxPooling2D(),
        layers.Dropout(0.2),
        layers.Dense(NUM_CLASSES),
    ], name="cnn_gap")


def cnn_bn(input_shape: tuple[int, int, int]) -> keras.Model:
    """cnn_gap's idea, cheaper and quicker to train: batch-normalised convolutions (statistics averaged
    over the last ~10 batches, so that even short runs test well), a pooling after each but the last,
    whose view then spans the whole canvas, and a global max. Under 100,000 weights; about 9 million
    multiply-adds per 40x40 image, against cnn_gap's 16 million (most of them where the image is large).
    Each block pools before it normalises: the normalisation, passes over memory in float32, then sees a
    quarter of the values, which trained it about 1.8x faster on a CPU, as accurate (docs/speed.md)."""
    def block(filters: int, size: int, pool: bool = True, **named) -> list:
        return [layers.Conv2D(filters, size, padding="same", use_bias=False, **named),
                *([layers.MaxPooling2D(2)] if pool else []),
                layers.BatchNormalization(momentum=0.9), layers.Activation("relu")]
    return four_blocks("cnn_bn", input_shape, block)


def cnn_invariant(input_shape: tuple[int, int, int]) -> keras.Model:
    """cnn_bn made exactly shift-invariant (stages/layers.py): each convolution pads circularly, and each
    pooling takes the 2x2 max at every position, then keeps the one of its four grids with the most
    energy instead of always the even one. The same weights and multiply-adds as cnn_bn; trained on
    centred digits, it answers alike wherever the digit sits on the canvas."""
    def block(filters: int, size: int, pool: bool = True, **named) -> list:
        return [CircularPad(size // 2, (size - 1) // 2),
                layers.Conv2D(filters, size, padding="valid", use_bias=False, **named),
                *([CircularPad(0, 1), layers.MaxPooling2D(2, strides=1), PolyphaseDown()] if pool else []),
                layers.BatchNormalization(momentum=0.9), layers.Activation("relu")]
    return four_blocks("cnn_invariant", input_shape, block)


def four_blocks(name: str, input_shape: tuple[int, int, int], block) -> keras.Model:
    """Four convolution blocks of 24, 48, 64 and 96 filters (5x5, then 3x3; the last does not pool),
    a global max over positions, dropout and the class logits."""
    return keras.Sequential([
        keras.Input(input_shape),
        *block(24, 5, name="conv"),
        *block(48, 3),
        *block(64, 3),
        *block(96, 3, pool=False),
        layers.GlobalMaxPooling2D(),
        layers.Dropout(0.2),
        layers.Dense(NUM_CLASSES),
    ], name=name)


BUILDERS = {"linear": linear, "mlp": mlp, "cnn": cnn, "cnn_gap": cnn_gap, "cnn_bn": cnn_bn,
            "cnn_invariant": cnn_invariant}


def build(name: str, input_shape: tuple[int, int, int]) -> keras.Model:
    return BUILDERS[name](input_shape)

