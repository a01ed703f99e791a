"""Kernel sizes: a searchable convolution holds its largest square kernel, and a smaller option is its centre.

A k x k option is the centre of the K x K kernel the layer holds (the rest of it zero), so every
option shares the weights of the ones inside it (OFA's elastic kernel). The centre computes
exactly what a k x k convolution computes only if both pad the input alike: TensorFlow's `same`
padding pads `max((out - 1) * s + k - n, 0)` pixels in total along an n-pixel axis at stride s,
half of it (rounded down) before the first pixel, and the centre sits (K - k) / 2 pixels in, so
the two agree when the K kernel pads exactly (K - k) / 2 more pixels before. At stride 1 they
always do; a 1x1 at stride 2 on an even input does not (the 1x1 reads pixel 2i, the centre of a
3x3 pixel 2i + 1), so that option is not offered to such a layer (`crops_exactly`). Only odd
sizes (an even kernel has no centre); with `valid` padding a smaller kernel changes the output's
size, so such a layer has one size.

The same crop in numpy (strip, the size model, the cycle model's probes) and in TensorFlow (the
searchable layers' exact pass), and the centre masks of the relaxed pass.
"""

import math

import numpy as np

from udc.compat import tf


def _padding_before(size: int, stride: int, kernel: int) -> int:
    """Pixels TensorFlow's `same` padding adds before the first one along an axis of `size` pixels."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def crops_exactly(kernel: int, largest: int, input_size, strides, padding: str) -> bool:
    """Whether the `kernel` x `kernel` centre of a `largest` x `largest` kernel computes what a `kernel` x
    `kernel` convolution computes on an input of `input_size` (height, width) at `strides`."""
    if kernel == largest:
        return True
    if kernel > largest or kernel % 2 == 0 or largest % 2 == 0 or padding.lower() != "same":
        return False
    offset = (largest - kernel) // 2
    return all(_padding_before(n, s, largest) - offset == _padding_before(n, s, kernel)
               for n, s in zip(input_size, strides))


def crop_np(kernel: np.ndarray, size: int, axes=(0, 1)) -> np.ndarray:
    """The `size` x `size` centre of a kernel's spatial `axes` (Keras' HWIO / HWC1: 0 and 1; TFLite's OHWI: 1, 2)."""
    keep = [slice(None)] * kernel.ndim
    for axis in axes:
        offset = (kernel.shape[axis] - size) // 2
        keep[axis] = slice(offset, offset + size)
    return kernel[tuple(keep)]


def crop(kernel, size):
    """The `size` x `size` centre of a Keras kernel (HWIO or HWC1); `size` may be a tensor."""
    size = tf.cast(size, tf.int32)
    offset = (tf.shape(kernel)[0] - size) // 2
    rank = len(kernel.shape)
    return tf.slice(kernel, tf.stack([offset, offset] + [0] * (rank - 2)), tf.stack([size, size] + [-1] * (rank - 2)))


def centre_mask(largest: int, size: int, rank: int = 4) -> np.ndarray:
    """1 on the `size` x `size` centre of a `largest` x `largest` kernel, 0 around it, broadcastable to the kernel."""
    mask = np.zeros((largest, largest), np.float32)
    offset = (largest - size) // 2
    mask[offset:offset + size, offset:offset + size] = 1.0
    return mask.reshape((largest, largest) + (1,) * (rank - 2))


def centred(kernel: np.ndarray, largest: int) -> np.ndarray:
    """A Keras kernel (HWIO or HWC1) placed in the centre of a `largest` x `largest` one, zeros around it."""
    padding = [((largest - n) // 2, largest - n - (largest - n) // 2) for n in kernel.shape[:2]]
    return np.pad(kernel, padding + [(0, 0)] * (kernel.ndim - 2))
