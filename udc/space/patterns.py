"""N:M weight patterns: at most N nonzero weights in every group of M along a kernel's input channels.

A pattern option is the text "dense" (no pattern) or "N:M" (e.g. "2:4", tfmot's
`sparsity_m_by_n=(2, 4)`). Its mask keeps the N weights of largest |w| in each group of
M consecutive input-channel weights (ties to the lower channel), the last group padded
with zeros: along the input channels because that is the axis the Ethos-U85's sparse
weight format groups (Vela 5.2 runs a layer 2:4-sparse when every group of 4 input-channel
weights holds at least 2 zeros, the input depth padded with zeros to a multiple of 4).
The same rule, in TensorFlow for the searchable layers and in numpy for strip, the size
model and the cycle model's probes, so that every part prunes the same weights.

A pattern only adds zeros: pruning to a sparsity rate and rounding to a bit grid after it
keep the pattern (zeros are the smallest magnitudes, and round to zero).
"""

import numpy as np

from udc.compat import tf
from udc.errors import ConfigError

DENSE = "dense"


def parse_pattern(pattern: str) -> tuple | None:
    """(N, M) of an "N:M" pattern, None for "dense"; ConfigError for anything else."""
    if pattern == DENSE:
        return None
    parts = pattern.split(":") if isinstance(pattern, str) else []
    if len(parts) == 2 and all(p.isdigit() for p in parts) and 0 < int(parts[0]) < int(parts[1]):
        return int(parts[0]), int(parts[1])
    raise ConfigError(f"weight pattern {pattern!r} is not valid; --config.search.patterns must hold 'dense' "
                      "or 'N:M' with 0 < N < M, e.g. --config.search.patterns='(\"dense\",\"2:4\")'")


def pattern_of(choice: dict) -> str:
    """The pattern of one layer's choice dict; "dense" if it names none (choices written before patterns)."""
    return choice.get("pattern", DENSE)


def kept_share(pattern: str) -> float:
    """The most of a kernel's weights `pattern` keeps (N/M; 1 for dense)."""
    nm = parse_pattern(pattern)
    return 1.0 if nm is None else nm[0] / nm[1]


def pattern_mask_np(w: np.ndarray, pattern: str, axis: int = -2) -> np.ndarray:
    """0/1 mask (float32, shape of `w`) that keeps `w` to `pattern` along `axis` (input channels)."""
    nm = parse_pattern(pattern)
    if nm is None:
        return np.ones(w.shape, np.float32)
    n, m = nm
    moved = np.moveaxis(np.abs(np.asarray(w, np.float32)), axis, -1)
    depth = moved.shape[-1]
    padded = -(-depth // m) * m
    moved = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, padded - depth)])
    groups = moved.reshape(moved.shape[:-1] + (padded // m, m))
    order = np.argsort(-groups, axis=-1, kind="stable")  # largest first, ties to the lower channel
    rank = np.argsort(order, axis=-1, kind="stable")
    keep = (rank < n).astype(np.float32).reshape(moved.shape)[..., :depth]
    return np.moveaxis(keep, -1, axis)


def pattern_mask(w, pattern: str, axis: int = -2):
    """`pattern_mask_np` in TensorFlow (no gradient), for kernels in a traced forward pass."""
    nm = parse_pattern(pattern)
    if nm is None:
        return tf.ones_like(w)
    n, m = nm
    ndim = len(w.shape)
    axis %= ndim
    perm = [i for i in range(ndim) if i != axis] + [axis]
    moved = tf.transpose(tf.stop_gradient(tf.abs(w)), perm)
    depth = tf.shape(moved)[-1]  # dynamic in an exact pass: the chosen input width
    padded = (depth + m - 1) // m * m
    moved = tf.pad(moved, tf.concat([tf.zeros([ndim - 1, 2], tf.int32), [[0, padded - depth]]], 0))
    groups = tf.reshape(moved, tf.concat([tf.shape(moved)[:-1], [padded // m, m]], 0))
    order = tf.argsort(-groups, axis=-1, stable=True)
    rank = tf.argsort(order, axis=-1, stable=True)
    keep = tf.reshape(tf.cast(rank < n, w.dtype), tf.shape(moved))[..., :depth]
    return tf.transpose(keep, np.argsort(perm))


def apply_pattern_np(w: np.ndarray, pattern: str, axis: int = -2) -> np.ndarray:
    """`w` with the weights outside `pattern` zeroed."""
    return np.asarray(w, np.float32) * pattern_mask_np(w, pattern, axis)
