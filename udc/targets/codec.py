"""Exact Ethos-U55/U65 encoded size of a weight stream, from Vela's own codec."""

import numpy as np
from ethosu import mlw_codec


def encoded_bytes(values: np.ndarray) -> int:
    """Bytes that `mlw_codec.encode` produces for the integers in `values` (flattened).

    This is the codec's size for the stream in the given order; Vela reorders weights
    into bricks and pads them first, so a whole model's truth is Vela's
    `total_npu_encoded_weights`.
    """
    flat = np.asarray(values).astype(np.int64).ravel().tolist()
    return len(mlw_codec.encode(flat)) if flat else 0
