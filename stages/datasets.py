"""What the training and evaluation stages feed to a model, built from the translate stage's files."""

import math

import keras
import numpy as np

from stages import files, paths
from stages.translate import DIGIT, draw_offsets, extract, place


def as_input(images: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w) -> float32 (n, h, w, 1) in [0, 1]."""
    x = images.astype(np.float32)[..., None]
    x /= 255.0  # in place: 10x faster than a second array
    return x


def load(name: str) -> dict[str, np.ndarray]:
    """One dataset file of the translate stage: `centred` or `translated`."""
    return files.load_npz(paths.dataset(name))


class TrainBatches(keras.utils.PyDataset):
    """Shuffled training batches, with the digits optionally placed anew every epoch.

    placement: 'fixed' uses the translate stage's images as they are; 'fresh' draws
    a new offset for every digit every epoch; 'centre' puts every digit at the canvas
    centre. Batch i belongs to epoch first_epoch + i // steps_per_epoch, and that
    epoch's images and order depend only on (seed, epoch): so the data are the same
    whatever Keras prefetches, and a resumed run continues with the right epoch.
    Images stay uint8 until a batch is drawn: converting a whole epoch's worth to
    float32 took longer than placing the digits, and four times the memory.
    """

    def __init__(self, images, labels, offsets, placement: str, batch_size: int, seed: int, max_offset: int):
        super().__init__()
        self.labels = labels.astype(np.int32)
        self.placement, self.batch_size, self.seed, self.max_offset = placement, batch_size, seed, max_offset
        self.canvas = images.shape[1]
        if placement == "fixed":
            self.fixed_images = images
        else:
            self.digits = extract(images, offsets)
        self.steps_per_epoch = math.ceil(len(labels) / batch_size)
        self.first_epoch = 0
        self._epoch, self._images, self._order = None, None, None

    @property
    def num_batches(self):
        return None  # endless: Keras asks for steps_per_epoch batches per epoch

    def _prepare(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self._order = rng.permutation(len(self.labels))
        if self.placement == "fixed":
            self._images = self.fixed_images
            return
        if self.placement == "fresh":
            offsets = draw_offsets(len(self.digits), self.max_offset, rng)
        else:
            offsets = np.full((len(self.digits), 2), (self.canvas - DIGIT) // 2, dtype=np.int16)
        self._images = place(self.digits, offsets, self.canvas)

    def __getitem__(self, index: int):
        epoch, step = divmod(index, self.steps_per_epoch)
        epoch += self.first_epoch
        if epoch != self._epoch:
            self._prepare(epoch)
            self._epoch = epoch
        batch = self._order[step * self.batch_size:(step + 1) * self.batch_size]
        return as_input(self._images[batch]), self.labels[batch]
