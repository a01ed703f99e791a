"""Data augmentation for training batches: small random shifts and horizontal flips.

Small image sets (Fashion-MNIST's 28x28, the digits' 8x8) overfit within a few whole
epochs; shifting each image by up to `shift` pixels (zero padding, then a random crop
back to the original size) and, where the classes are mirror-symmetric (clothes, not
digits), flipping half of them left to right, is the usual cure. Random numbers come
from a `tf.random.Generator`, so a run with the same seed sees the same batches and a
resumed run can reseed per epoch.
"""

import dataclasses

from udc.compat import tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    shift: int = 0  # pixels, in each direction
    horizontal_flip: bool = False

    @classmethod
    def from_config(cls, augment) -> "Augmentation":
        """From a config section with `shift` and `horizontal_flip` (None: no augmentation)."""
        if augment is None:
            return cls()
        return cls(shift=int(augment.shift), horizontal_flip=bool(augment.horizontal_flip))

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.horizontal_flip

    def __call__(self, images, generator):
        """A batch (N, H, W, C) of float images, shifted and flipped per image."""
        if not self.active:
            return images
        n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
        if self.shift > 0:
            s = self.shift
            padded = tf.pad(images, [[0, 0], [s, s], [s, s], [0, 0]])
            offsets = generator.uniform([n, 2], minval=0, maxval=2 * s + 1, dtype=tf.int32)
            rows = offsets[:, :1] + tf.range(h)[None, :]  # (N, H)
            cols = offsets[:, 1:] + tf.range(w)[None, :]  # (N, W)
            images = tf.gather(padded, rows, axis=1, batch_dims=1)
            images = tf.gather(images, cols, axis=2, batch_dims=1)
        if self.horizontal_flip:
            flip = generator.uniform([n, 1, 1, 1]) < 0.5
            images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        return images
