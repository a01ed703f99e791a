"""Size model of an Ethos-U target: expected encoded weight bytes of a supernet.

**Exact, for hard choices** (`layer_codes`, `layer_codec_bytes`, `network_codec_bytes`):
the layer's kernel is cut to (input width, output width), magnitude-pruned to the
sparsity rate, rounded to the b-bit grid and written as the int8 codes the exporter
stores (`k * 127 // qmax`, same in every channel), then fed to Vela's codec:

* `order="vela"`: `ethosu.vela.api.npu_encode_weights` (OHWI, Vela's brick order and
  traversal rule, one stream per layer; Ethos-U55/U65 only);
* `order="flat"`: `mlw_codec.encode` on the OHWI stream (any target; ~6x faster).

Measured here on a 5-layer QAT-exported net (4 convs with 2/3/4/8 bits, 0-90 %
sparse, + a 6-bit Dense; 46-47 kB encoded): Vela's `total_npu_encoded_weights` was
47,232 B on U55-128; brick order summed to 46,928 B (-0.6 %), the flat stream to
46,640 B (-1.3 %); U65-512 (two cores) 47,312 B. Vela's remainder comes from cutting
the weights into depth stripes and per-core streams, each padded to 16 bytes; the
public API has no schedule, so one stream per layer is the closest per-layer figure.

**Differentiable, over choice probabilities** (`layer_expected_bytes`,
`network_expected_bytes`): for a layer with kernel area K, the expected encoded bytes are

    E[bytes] = (sum_{b,s} p_b p_s A[b, s]) * K * E[c_in] * E[c_out] + sum_{b,s} p_b p_s C[b, s]

with `A[b, s]` the bytes per weight and `C[b, s]` the fixed bytes per stream (header,
palette, padding) that the real codec gives for this layer's own weights at bits b and
sparsity s: `calibrate` encodes the full kernel and a quarter-size sub-kernel and
fits a line through the two (stored in the layer's non-trainable `bytes_per_weight`
and `bytes_per_stream` variables); `E[c_out] = sum_i p_i width_i` and `E[c_in]` the expected
width of the layer named by `input_from` (the full input depth if none). Choices of
different layers are independent, so `E[c_in * c_out] = E[c_in] E[c_out]` exactly: the
dependence on the previous layer's width is carried by its probabilities, and gradients
flow to both layers' width logits. A depthwise layer has K * E[c_in] weights.

Calibrate on the current weights, not once on random ones: trained kernels are
peaky, so at a given (b, s) they put more weights in the codec's cheap small codes than
a Gaussian does. `CodecCalibration` refreshes the tables every N training steps.
"""

import numpy as np

from udc.compat import keras, tf
from udc.errors import ConfigError
from udc.hardware.codec import encoded_bytes
from udc.search_space import layers as search_layers
from udc.search_space.quantizers import grid_codes

_API_ACCELERATORS = {
    "ethos-u55-32": "Ethos_U55_32", "ethos-u55-64": "Ethos_U55_64", "ethos-u55-128": "Ethos_U55_128",
    "ethos-u55-256": "Ethos_U55_256", "ethos-u65-256": "Ethos_U65_256", "ethos-u65-512": "Ethos_U65_512",
}
VELA_OFM_BLOCK_DEPTH = 16


def _kind(layer):
    if isinstance(layer, search_layers.SearchableDepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, search_layers.SearchableDense):
        return "dense"
    return "conv"


def magnitude_prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Zeroes the floor(sparsity * n) smallest |w| (as the searchable layers do)."""
    w = np.array(w, np.float32, copy=True)
    k = int(np.floor(sparsity * w.size))
    if k:
        threshold = np.sort(np.abs(w), axis=None)[k - 1]
        w[np.abs(w) <= threshold] = 0.0
    return w


def layer_codes(layer, bits: int, sparsity: float, width=None, input_width=None) -> np.ndarray:
    """Int8 codes the exported layer stores for these hard choices, in TFLite's layout.

    Conv: OHWI; depthwise: 1HWC; Dense: (out, in). Widths default to the full shape.
    """
    kernel = layer.kernel.numpy()
    kind = _kind(layer)
    if kind == "depthwise":
        channels = input_width or kernel.shape[2]
        sub = kernel[:, :, :channels, :]
        codes = grid_codes(magnitude_prune(sub, sparsity), bits, channel_axis=2)
        return np.transpose(codes, (3, 0, 1, 2))
    width = width or kernel.shape[-1]
    cin = input_width or kernel.shape[-2]
    if kind == "dense":
        codes = grid_codes(magnitude_prune(kernel[:cin, :width], sparsity), bits, channel_axis=None)
        return codes.T
    codes = grid_codes(magnitude_prune(kernel[:, :, :cin, :width], sparsity), bits, channel_axis=-1)
    return np.transpose(codes, (3, 0, 1, 2))


def codes_bytes(codes: np.ndarray, kind: str = "conv", accelerator: str | None = None, order="flat") -> int:
    """Encoded bytes of stored int8 codes (TFLite layout) by Vela's codec."""
    if order == "flat":
        return encoded_bytes(codes)
    if order != "vela":
        raise ConfigError(f"unknown codec order '{order}'; use 'flat' or 'vela'")
    if accelerator not in _API_ACCELERATORS:
        raise ConfigError(
            f"Vela's weight-encoding API has no '{accelerator}'; use order='flat' or one of "
            f"{', '.join(_API_ACCELERATORS)}"
        )
    from ethosu.vela.api import NpuAccelerator, NpuBlockTraversal, npu_encode_weights
    from ethosu.vela.numeric_util import round_up

    if kind == "dense":
        ohwi = codes[:, None, None, :]
    elif kind == "depthwise":
        ohwi = np.transpose(codes, (3, 1, 2, 0))  # 1HWC -> C HW 1 as Vela holds it
    else:
        ohwi = codes
    ohwi = ohwi.astype(np.int16)
    traversal = NpuBlockTraversal.DEPTH_FIRST
    if kind == "conv":  # Vela's rule (weight_compressor.encode_weight_and_scale_tensor)
        depth, area = ohwi.shape[3], ohwi.shape[1] * ohwi.shape[2]
        depth_use = depth / round_up(depth, 32)
        part_use = (depth / round_up(depth, 8)) * (area / round_up(area, 4))
        if part_use >= depth_use or depth <= 8:
            traversal = NpuBlockTraversal.PART_KERNEL_FIRST
    encoded = npu_encode_weights(
        getattr(NpuAccelerator, _API_ACCELERATORS[accelerator]), ohwi, (1, 1), 8,
        min(VELA_OFM_BLOCK_DEPTH, ohwi.shape[0]), kind == "depthwise", traversal,
    )
    return len(encoded)


def layer_codec_bytes(layer, bits, sparsity, width=None, input_width=None, accelerator=None, order="flat") -> int:
    """Exact encoded bytes of one layer for hard choices (see `layer_codes`)."""
    codes = layer_codes(layer, bits, sparsity, width, input_width)
    return codes_bytes(codes, _kind(layer), accelerator, order)


def _input_width(layer, choices):
    source = layer.input_from
    if source is None:
        return None
    if _kind(source) == "depthwise":
        return _input_width(source, choices) or int(source.kernel.shape[2])
    return choices[source.name]["width"]


def network_codec_bytes(layers, choices=None, accelerator=None, order="flat") -> dict:
    """Exact bytes per layer (and 'total') for hard choices {layer name: {width, sparsity, bits}}.

    choices=None uses every layer's current argmax (`hard_choice()`).
    """
    choices = choices or {layer.name: layer.hard_choice() for layer in layers}
    sizes = {}
    for layer in layers:
        c = choices[layer.name]
        width = None if _kind(layer) == "depthwise" else c["width"]
        sizes[layer.name] = layer_codec_bytes(layer, c["bits"], c["sparsity"], width,
                                              _input_width(layer, choices), accelerator, order)
    sizes["total"] = sum(sizes.values())
    return sizes


# ------------------------------------------------------------------ calibration

def _calibration_shape(layer):
    """A sub-shape about a quarter of the kernel (half the output and input channels)."""
    kernel = layer.kernel.shape
    if _kind(layer) == "depthwise":
        return None, max(1, kernel[2] // 4)
    return max(1, kernel[-1] // 2), max(1, kernel[-2] // 2)


def _weights_in(layer, width=None, input_width=None):
    shape = list(layer.kernel.shape)
    if _kind(layer) == "depthwise":
        return int(shape[0] * shape[1] * (input_width or shape[2]))
    if width:
        shape[-1] = width
    if input_width:
        shape[-2] = input_width
    return int(np.prod(shape))


def codec_tables(layer, accelerator=None, order="flat"):
    """(bytes_per_weight, bytes_per_stream) tables [bits, sparsity] of the layer's current weights.

    The codec is measured on the full kernel and on a quarter-size sub-kernel (the
    channels a narrower choice keeps); a line through the two points gives the cost per
    weight and the fixed cost per stream (header, palette, padding: 30-70 bytes, which
    matters for small layers).
    """
    width, input_width = _calibration_shape(layer)
    n_full, n_sub = _weights_in(layer), _weights_in(layer, width, input_width)
    slope = np.zeros((len(layer.bits), len(layer.sparsities)), np.float32)
    intercept = np.zeros_like(slope)
    for i, bits in enumerate(layer.bits):
        for j, sparsity in enumerate(layer.sparsities):
            full = layer_codec_bytes(layer, bits, sparsity, accelerator=accelerator, order=order)
            if n_sub == n_full:
                slope[i, j], intercept[i, j] = full / n_full, 0.0
                continue
            sub = layer_codec_bytes(layer, bits, sparsity, width, input_width, accelerator, order)
            a = (full - sub) / (n_full - n_sub)
            if a < 0 or a * n_full > full:  # no positive fixed cost: proportional, exact at full size
                a = full / n_full
            slope[i, j], intercept[i, j] = a, full - a * n_full
    return slope, intercept


def bytes_per_weight_table(layer, accelerator=None, order="flat") -> np.ndarray:
    """T[b, s]: codec bytes per weight of the layer's full current kernel at bits b, sparsity s."""
    n = _weights_in(layer)
    table = np.zeros((len(layer.bits), len(layer.sparsities)), np.float32)
    for i, bits in enumerate(layer.bits):
        for j, sparsity in enumerate(layer.sparsities):
            table[i, j] = layer_codec_bytes(layer, bits, sparsity, accelerator=accelerator, order=order) / n
    return table


def calibrate(layers, accelerator=None, order="flat") -> None:
    """Measures every layer's size tables on its current weights with the real codec."""
    for layer in layers:
        slope, intercept = codec_tables(layer, accelerator, order)
        layer.bytes_per_weight.assign(slope)
        layer.bytes_per_stream.assign(intercept)


class CodecCalibration(keras.callbacks.Callback):
    """Re-measures the size tables every `every_steps` training batches (and at the start)."""

    def __init__(self, every_steps=100, accelerator=None, order="flat"):
        super().__init__()
        self.every_steps, self.accelerator, self.order = every_steps, accelerator, order
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.step % self.every_steps == 0:
            calibrate(search_layers.searchable_layers(self.model), self.accelerator, self.order)
        self.step += 1


# ------------------------------------------------------------------ expectation

def expected_width(layer):
    """E[output channels] (a differentiable scalar tensor)."""
    if _kind(layer) == "depthwise":
        return expected_input_width(layer)
    probs = layer.choice_probabilities()["width"]
    return tf.reduce_sum(probs * tf.constant(layer.widths, tf.float32))


def expected_input_width(layer):
    if layer.input_from is None:
        return tf.constant(float(layer.kernel.shape[-2]))
    return expected_width(layer.input_from)


def layer_expected_bytes(layer):
    """Differentiable expected encoded bytes of one layer under its current choice probabilities."""
    probs = layer.choice_probabilities()
    joint = probs["bits"][:, None] * probs["sparsity"][None, :]
    bytes_per_weight = tf.reduce_sum(joint * layer.bytes_per_weight)
    bytes_per_stream = tf.reduce_sum(joint * layer.bytes_per_stream)
    shape = layer.kernel.shape
    if _kind(layer) == "depthwise":
        weights = float(shape[0] * shape[1]) * expected_input_width(layer)
    elif _kind(layer) == "dense":
        weights = expected_input_width(layer) * expected_width(layer)
    else:
        weights = float(shape[0] * shape[1]) * expected_input_width(layer) * expected_width(layer)
    return bytes_per_weight * weights + bytes_per_stream


def network_expected_bytes(layers):
    """Sum of `layer_expected_bytes` over the layers (a scalar tensor, differentiable)."""
    return tf.add_n([layer_expected_bytes(layer) for layer in layers])
