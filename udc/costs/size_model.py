"""Size model of an Ethos-U target: expected encoded weight bytes of a supernet.

**Exact, for hard choices** (`layer_codes`, `layer_codec_bytes`, `network_codec_bytes`):
the layer's kernel is cut to the centre of its kernel size (`udc.space.kernel_sizes`) and to
(input width, output width), cut to its N:M weight pattern
(`udc.space.patterns`), magnitude-pruned to the sparsity rate, rounded to the b-bit grid and
written as the int8 codes the exporter stores (`k * 127 // qmax`, same in every channel; a test
checks they equal the .tflite's bytes), then measured in one of two ways:

* the target's own weight encoding (default, `udc.targets.Target.encoded_weight_bytes`):
  for an Ethos-U55/U65, Vela's brick order; for an Ethos-U85, Vela's count for the layer
  compiled alone (`udc.targets.ethos_u`, `udc.targets.layer_model`).
* `order="flat"` (or no target): `mlw_codec.encode` on the OHWI stream (about 2x faster to
  calibrate, but it misses the brick padding: 2-5 % low on small nets, up to 15-22 % on 1-2 kB ones).

**On an exported .tflite** (`exported_bytes`): the same codec on the int8 codes the file
stores, plus the pooling weights. This is the size model calibrated on the exported
weights: at a layer's own shape the calibrated line passes through the codec's
measurement of the full kernel, so estimate and codec agree there. Set beside Vela,
it separates what fine-tuning moved (selection estimate -> exported) from what the
model misses (exported -> Vela). On a 3 KiB digits search (U55-128, 6 layers), the
selection estimate was 2.14 % under Vela: 1.07 % the calibrated line's extrapolation
to the chosen sub-kernels, 0.53 % fine-tuning (one layer one 16-byte step dearer) and
0.53 % (16 B) Vela's own stream splits; bias and scale bytes are not in Vela's count.

Vela's `total_npu_encoded_weights` also counts weights Vela invents: a
GlobalAveragePooling (TFLite MEAN) runs as a depthwise conv with a kernel of ones
(`global_pool_bytes`, e.g. 112 B for 4x4x48), and Vela may cut a layer into depth
stripes with one stream (header + 16-byte padding) each, which no per-layer API sees.
Measured on 2-layer conv + Dense nets exported through grid QAT (trained on digits),
against Vela 5.2 (its default C++ "regor" backend; the legacy Python path, whose
encoder this API wraps, gave the same total on the net checked):

    net size        exact, brick order + pool   estimate (calibrated)   flat stream
    9-19 kB         -0.25 % .. 0.00 %           -0.25 % .. 0.00 %       -2.0 % .. -4.7 %
    1.5-2.5 kB      -4.0 % .. 0.00 %            -3.9 % .. -0.8 %        -14.7 % .. -22.2 %

(U55-128 and U65-512; the remaining gap on tiny nets is Vela's depth stripes).

**Differentiable, over choice probabilities** (`layer_expected_bytes`,
`network_expected_bytes`): for a layer at kernel size k (area K_k), the expected encoded bytes are

    E[bytes | k] = (sum_{n,b,s} p_n p_b p_s A[k, n, b, s]) * K_k * E[c_in] * E[c_out] + sum_{n,b,s} p_n p_b p_s C[k, n, b, s]

and E[bytes] their mean under the kernel-size probabilities, with `A[k, n, b, s]` the bytes per
weight and `C[k, n, b, s]` the fixed bytes per stream (header, palette, padding) that the real codec
gives for this layer's own weights at kernel size k, pattern n, bits b and sparsity s (on an Ethos-U85 a 2:4 layer is stored in Vela's sparse format, whose bytes
Vela's own count of the layer gives): `codec_tables` encodes the full kernel and a quarter-size sub-kernel and
fits a line through the two (`CodecTables`, held by the search, not by the layers; a
convolution has one pair of tables per weight
traversal of the target (`Target.weight_traversals`), chosen per input-width option by
the target's rule, so the expectation runs over the input width's options rather than
its mean); `E[c_out] = sum_i p_i width_i` and `E[c_in]` the expected
width of the layer named by `input_from` (after a Concatenate, the sum of its input blocks' widths, over their
joint choices; the full input depth if none). Choices of
different layers are independent, so `E[c_in * c_out] = E[c_in] E[c_out]` exactly: the
dependence on the previous layer's width is carried by its probabilities, and gradients
flow to both layers' width logits. A depthwise layer has K * E[c_in] weights.

Calibrate on the current weights, not once on random ones: on a briefly trained
3x3x32x64 conv the bytes per weight were 0.61-1.29x those of the same layer at its
initialisation, depending on (b, s) (cheaper at 2-3 bits, where the grid rounds more of
a peaky kernel to zero; dearer at high sparsity). The search recalibrates them at the start
of every search epoch and before selection (about 2 s for a 3x3x64x128 conv in brick order).
"""

import numpy as np

from udc.compat import keras, tf
from udc.errors import ConfigError
from udc.space import layers as search_layers
from udc.space.dimensions import KERNEL_SIZE, pruned_count
from udc.space.patterns import DENSE, apply_pattern_np, kept_share, pattern_of
from udc.space.quantizers import grid_codes
from udc.targets.codec import encoded_bytes

TRAVERSALS = 2  # rows of a layer's size tables: the most weight traversals a target has (Ethos-U: 2)


def layer_kind(layer) -> str:
    """'conv', 'depthwise' or 'dense': the kind of a searchable layer."""
    if isinstance(layer, search_layers.SearchableDepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, search_layers.SearchableDense):
        return "dense"
    return "conv"


def magnitude_prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Zeroes the ceil(sparsity * n) smallest |w| (as the searchable layers do)."""
    w = np.array(w, np.float32, copy=True)
    k = pruned_count(sparsity, w.size)
    if k:
        threshold = np.sort(np.abs(w), axis=None)[k - 1]
        w[np.abs(w) <= threshold] = 0.0
    return w


def layer_codes(layer, bits: int, sparsity: float, width=None, input_width=None, pattern=DENSE,
                kernel_size=None, input_rows=None) -> np.ndarray:
    """Int8 codes the exported layer stores for these hard choices, in TFLite's layout.

    Conv: OHWI; depthwise: 1HWC; Dense: (out, in). Widths and the kernel size default to the full shape; the
    input rows are the first `input_width` ones, or `input_rows` (after a Concatenate, `input_rows_of`).
    """
    kind = layer_kind(layer)
    kernel = layer.centre(layer.kernel.numpy(), kernel_size)
    if kind == "depthwise":
        sub = kernel[:, :, :input_width or kernel.shape[2], :]
    else:
        width = width or kernel.shape[-1]
        rows = kernel[..., :input_width, :] if input_rows is None else np.take(kernel, input_rows, axis=-2)
        sub = rows[..., :width]
    return kernel_codes(prune(sub, pattern, sparsity, layer.in_axis), bits, kind)


def prune(kernel: np.ndarray, pattern: str, sparsity: float, in_axis: int = -2) -> np.ndarray:
    """The kernel cut to its N:M `pattern` along the input channels (`in_axis`), then magnitude-pruned to
    `sparsity` (the rule of the searchable layers' exact pass and of strip)."""
    return magnitude_prune(apply_pattern_np(kernel, pattern, in_axis), sparsity)


def kernel_codes(kernel: np.ndarray, bits: int, kind: str, step_factor=1.0) -> np.ndarray:
    """The int8 codes an exported kernel (Keras layout: HWIO conv, HWC1 depthwise, (in, out) Dense)
    is stored as, in TFLite's layout: per-channel grids for convolutions, one for Dense; the grid
    step `step_factor` times the max-based one (`udc.deploy.size_keeping`)."""
    if kind == "dense":
        return grid_codes(kernel, bits, channel_axis=None, step_factor=step_factor).T
    codes = grid_codes(kernel, bits, channel_axis=2 if kind == "depthwise" else -1, step_factor=step_factor)
    return np.transpose(codes, (3, 0, 1, 2))


def plain_layer_kind(layer) -> str:
    """The kind of a plain tf_keras Conv2D / DepthwiseConv2D / Dense (of a stripped or QAT model)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise"
    return "dense" if isinstance(layer, keras.layers.Dense) else "conv"


def kernel_bytes(kernel: np.ndarray, bits: int, kind: str, target=None, step_factor=1.0) -> int:
    """Encoded bytes of an exported kernel (Keras layout) on its b-bit grid (`kernel_codes`)."""
    return codes_bytes(kernel_codes(kernel, bits, kind, step_factor), kind, target)


def codes_bytes(codes: np.ndarray, kind: str = "conv", target=None, order=None, traversal=None) -> int:
    """Encoded bytes of stored int8 codes (TFLite layout): `target`'s weight encoding
    (`Target.encoded_weight_bytes`, e.g. Vela's brick order), or with no target or
    `order="flat"` the Ethos-U codec on the stored stream.

    traversal: the target's weight traversal (`Target.weight_traversals`), default its own rule.
    """
    if order not in (None, "target", "flat"):
        raise ConfigError(f"unknown codec order '{order}'; use 'target' or 'flat'")
    if target is None or order == "flat":
        return encoded_bytes(codes)
    return target.encoded_weight_bytes(codes, kind, traversal)


def layer_codec_bytes(layer, bits, sparsity, width=None, input_width=None, target=None, order=None,
                      traversal=None, pattern=DENSE, kernel_size=None, input_rows=None) -> int:
    """Exact encoded bytes of one layer for hard choices (see `layer_codes`)."""
    codes = layer_codes(layer, bits, sparsity, width, input_width, pattern, kernel_size, input_rows)
    return codes_bytes(codes, layer_kind(layer), target, order, traversal)


def input_width_of(layer, choices):
    """Input channels of `layer` under hard `choices` (None: the kernel's full input depth)."""
    if layer.input_blocks:
        return sum(_block_widths(layer, choices))
    source = layer.input_from
    if source is None:
        return None
    if layer_kind(source) == "depthwise":
        return input_width_of(source, choices) or source.max_input_width
    return choices[source.name]["width"]


def input_rows_of(layer, choices):
    """The kernel rows `layer` reads under hard `choices`: after a Concatenate, the live rows of each input block;
    otherwise None (the first `input_width_of` rows)."""
    return layer.input_rows(_block_widths(layer, choices)) if layer.input_blocks else None


def _block_widths(layer, choices) -> list:
    """The width of each of `layer`'s input blocks under hard `choices` (a depthwise branch's is its input's)."""
    widths = []
    for source, channels in layer.input_blocks:
        if layer_kind(source) == "depthwise":
            widths.append(input_width_of(source, choices) or channels)
        else:
            widths.append(choices[source.name]["width"])
    return widths


def network_codec_bytes(layers, choices=None, target=None, order=None) -> dict:
    """Exact bytes per layer (and 'total') for hard choices {layer name: {width, kernel_size, pattern, sparsity,
    bits}}.

    choices=None uses every layer's current decoded choice (`hard_choice()`).
    """
    choices = choices or {layer.name: layer.hard_choice() for layer in layers}
    sizes = {}
    for layer in layers:
        c = choices[layer.name]
        width = None if layer_kind(layer) == "depthwise" else c["width"]
        sizes[layer.name] = layer_codec_bytes(layer, c["bits"], c["sparsity"], width, input_width_of(layer, choices),
                                              target, order, pattern=pattern_of(c),
                                              kernel_size=KERNEL_SIZE.chosen(layer, c),
                                              input_rows=input_rows_of(layer, choices))
    sizes["total"] = sum(sizes.values())
    return sizes


def global_pool_bytes(height: int, width: int, channels: int, target=None, order=None) -> int:
    """Weights Vela adds for a GlobalAveragePooling (TFLite MEAN) over an HxWxC map.

    Vela runs MEAN as a depthwise convolution whose HxW kernel holds ones, and counts
    these weights in `total_npu_encoded_weights` (112 B for 4x4x48 on U55-128). A fixed
    cost for the search: pass it to `network_expected_bytes(..., extra_bytes=...)`.
    """
    codes = np.ones((1, height, width, channels), np.int8)
    return codes_bytes(codes, "depthwise", target, order)


def exported_bytes(data: bytes, target=None, order=None) -> dict:
    """{"layers": [bytes per weight tensor], "pool": bytes, "total": bytes} of an int8 .tflite.

    Every conv / depthwise / dense weight tensor through the codec in `order` (default
    the target's own weight encoding), plus `global_pool_bytes`
    for every MEAN over the spatial axes.
    """
    from udc import tflite_file

    model = tflite_file.parse(data)
    layers = [codes_bytes(w.values, tflite_file.OP_KINDS[w.op], target, order)
              for w in tflite_file.weight_tensors(model) if w.op in tflite_file.OP_KINDS]
    pool = 0
    for sg in model.subgraphs:
        for op in sg.operators:
            if tflite_file.op_name(model, op) == "MEAN":
                _, h, w, c = sg.tensors[op.inputs[0]].shape
                pool += global_pool_bytes(int(h), int(w), int(c), target, order)
    return {"layers": layers, "pool": pool, "total": sum(layers) + pool}


# ------------------------------------------------------------------ calibration

def _calibration_shape(layer):
    """(output width, input width, input rows or None) of a sub-shape about a quarter of the kernel (half the output
    and input channels; after a Concatenate, half of each input block)."""
    kernel = layer.kernel.shape
    if layer_kind(layer) == "depthwise":
        return None, max(1, kernel[2] // 4), None
    if layer.input_blocks:
        rows = layer.input_rows([max(1, channels // 2) for _, channels in layer.input_blocks])
        return max(1, kernel[-1] // 2), len(rows), rows
    return max(1, kernel[-1] // 2), max(1, kernel[-2] // 2), None


def _weights_in(layer, width=None, input_width=None, kernel_size=None):
    shape = list(layer.kernel.shape)
    area = layer.kernel_area(kernel_size)
    if layer_kind(layer) == "depthwise":
        return area * int(input_width or shape[2])
    return area * int(input_width or shape[-2]) * int(width or shape[-1])


def codec_tables(layer, target=None, order=None):
    """(bytes_per_weight, bytes_per_stream) tables [traversal, kernel size, pattern, bits, sparsity] of the current
    weights.

    The codec is measured on the full kernel and on a quarter-size sub-kernel (the
    channels a narrower choice keeps); a line through the two points gives the cost per
    weight and the fixed cost per stream (header, palette, padding: 30-70 bytes, which
    matters for small layers). In Vela's brick order a convolution is measured with both
    traversals, since Vela picks one from the input depth (a 24-channel input is
    traversed part-kernel-first and pads 3x3 kernels to 12 taps, a 32-channel one not).
    """
    width, input_width, input_rows = _calibration_shape(layer)
    shape = (TRAVERSALS, len(layer.kernel_sizes), len(layer.patterns), len(layer.bits), len(layer.sparsities))
    slope, intercept = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    traversals = target.weight_traversals(layer_kind(layer)) if target is not None and order != "flat" else (None,)
    for t in traversals:
        rows = [t] if t is not None else list(range(TRAVERSALS))
        for m, kernel_size in enumerate(layer.kernel_sizes):
            n_full, n_sub = _weights_in(layer, kernel_size=kernel_size), _weights_in(layer, width, input_width,
                                                                                     kernel_size)
            for n, pattern in enumerate(layer.patterns):
                for i, bits in enumerate(layer.bits):
                    for j, sparsity in enumerate(layer.sparsities):
                        def measured(out_width=None, in_width=None, in_rows=None):  # None: the full kernel
                            return layer_codec_bytes(layer, bits, sparsity, out_width, in_width, target, order, t,
                                                     pattern, kernel_size, in_rows)

                        full = measured()
                        a = full / n_full
                        if n_sub != n_full:
                            a = (full - measured(width, input_width, input_rows)) / (n_full - n_sub)
                            if a < 0 or a * n_full > full:  # no positive fixed cost: proportional, exact at full size
                                a = full / n_full
                        slope[rows, m, n, i, j], intercept[rows, m, n, i, j] = a, full - a * n_full
    return slope, intercept


def bytes_per_weight_table(layer, target=None, order=None) -> np.ndarray:
    """T[b, s]: codec bytes per weight of the layer's full current kernel at bits b, sparsity s."""
    n = _weights_in(layer)
    table = np.zeros((len(layer.bits), len(layer.sparsities)), np.float32)
    for i, bits in enumerate(layer.bits):
        for j, sparsity in enumerate(layer.sparsities):
            table[i, j] = layer_codec_bytes(layer, bits, sparsity, target=target, order=order) / n
    return table


class CodecTables:
    """The size model's tables for one target, per searchable layer: bytes per weight and bytes per
    stream [traversal, kernel size, pattern, bits, sparsity] of the layer's current weights (`codec_tables`).

    Held by whoever estimates (the search's `Sizes`), not by the layers: a searchable layer holds
    no target-specific state, so one supernet can be measured for several targets. The tables are
    non-trainable variables, so a traced search step reads each recalibration without retracing.
    Until `calibrate` they hold a codec-free prior (b / 8 bytes per kept weight, 16 bytes per stream; an
    N:M pattern keeps at most N/M of the weights).
    """

    def __init__(self, layers, target=None, order=None):
        self.layers, self.target, self.order = list(layers), target, order
        self.per_weight, self.per_stream = {}, {}
        for layer in self.layers:
            prior = np.array([[[b / 8.0 * min(1.0 - s, kept_share(p)) + 0.02 for s in layer.sparsities]
                                for b in layer.bits] for p in layer.patterns], np.float32)
            prior = np.stack([np.stack([prior] * len(layer.kernel_sizes))] * TRAVERSALS)
            self.per_weight[layer.name] = tf.Variable(prior, trainable=False, name=f"{layer.name}_bytes_per_weight")
            self.per_stream[layer.name] = tf.Variable(np.full_like(prior, 16.0), trainable=False,
                                                      name=f"{layer.name}_bytes_per_stream")

    def calibrate(self) -> "CodecTables":
        """Measures every layer's tables on its current weights with the target's codec."""
        for layer in self.layers:
            slope, intercept = codec_tables(layer, self.target, self.order)
            self.per_weight[layer.name].assign(slope)
            self.per_stream[layer.name].assign(intercept)
        return self


# ------------------------------------------------------------------ expectation

def expected_width(layer):
    """E[output channels] (a differentiable scalar tensor)."""
    if layer_kind(layer) == "depthwise":
        return expected_input_width(layer)
    probs = layer.choice_probabilities()["width"]
    return tf.reduce_sum(probs * tf.constant(layer.widths, tf.float32))


def input_width_distribution(layer):
    """(probabilities tensor, widths tuple) of the layer's input channels."""
    if layer.input_blocks:
        return _block_sum_distribution(layer)
    source = layer.input_from
    if source is None:
        return tf.ones([1]), (int(layer.kernel.shape[-2]),)
    if layer_kind(source) == "depthwise":
        return input_width_distribution(source)
    return source.choice_probabilities()["width"], tuple(source.widths)


def _block_sum_distribution(layer):
    """The distribution of the sum of `layer`'s input block widths: the joint one of the blocks' owners (independent
    choices; a width group's blocks choose together), summed onto each total."""
    owners = list(dict.fromkeys(o for o in search_layers.block_owners(layer) if o is not None))
    joint = tf.ones([1])
    for owner in owners:  # the order of `input_block_widths`: the first owner's option varies slowest
        joint = tf.reshape(joint[:, None] * owner.choice_probabilities()["width"][None, :], [-1])
    sums = [sum(widths) for widths in search_layers.input_block_widths(layer)]
    totals = tuple(sorted(set(sums)))  # `input_width_options`
    return tf.math.unsorted_segment_sum(joint, [totals.index(t) for t in sums], len(totals)), totals


def expected_input_width(layer):
    probs, widths = input_width_distribution(layer)
    return tf.reduce_sum(probs * tf.constant(widths, tf.float32))


def layer_expected_bytes(layer, tables: CodecTables):
    """Differentiable expected encoded bytes of one layer under its current choice probabilities.

    E over the input width i, kernel size k, pattern n, bits b, sparsity s, output width o (all independent):
    sum p_i p_k p_n p_b p_s p_o (A[t(k, i), k, n, b, s] * K_k * w_i * w_o + C[t(k, i), k, n, b, s]), K_k the
    kernel area, t(k, i) Vela's traversal for that area and input depth w_i (convolutions only; K_k * w_i
    weights for depthwise).
    """
    p_in, widths_in = input_width_distribution(layer)
    a_in, c_in, areas = _expected_rates(layer, widths_in, tables)
    probs = layer.choice_probabilities()
    p_kernel_pattern = probs["kernel_size"][:, None, None] * probs["pattern"][None, :, None]
    a_in = tf.reduce_sum(p_kernel_pattern * a_in * tf.constant(areas, tf.float32)[:, None, None], axis=[0, 1])
    c_in = tf.reduce_sum(p_kernel_pattern * c_in, axis=[0, 1])
    weights_in = tf.reduce_sum(p_in * a_in * tf.constant(widths_in, tf.float32))  # E[A * K * w_in]
    out = 1.0 if layer_kind(layer) == "depthwise" else expected_width(layer)
    return weights_in * out + tf.reduce_sum(p_in * c_in)


def expected_bytes_grid(layer, widths_in, widths_out, tables: CodecTables):
    """Differentiable expected encoded bytes of one layer per kernel size and weight pattern and at every
    (input width, output width) of the given lists ([kernel sizes, patterns, len(widths_in), len(widths_out)];
    a depthwise layer's output factor is 1), over its bits and sparsity distributions: what the cycle model
    needs per cell."""
    a_in, c_in, areas = _expected_rates(layer, widths_in, tables)
    widths = tf.constant(widths_in, tf.float32)[:, None] * tf.constant(widths_out, tf.float32)[None, :]
    weights = tf.constant(areas, tf.float32)[:, None, None, None] * widths[None, None]
    return a_in[..., None] * weights + c_in[..., None]


def _expected_rates(layer, widths_in, tables):
    """(bytes per weight, bytes per stream) [kernel size, pattern, input width] expected over bits and sparsity
    (each cell's table row: the target's traversal for that kernel area and input depth), and the kernel
    area of each kernel size."""
    probs = layer.choice_probabilities()
    joint = probs["bits"][:, None] * probs["sparsity"][None, :]
    per_weight = tf.reduce_sum(joint * tables.per_weight[layer.name], axis=[3, 4])  # [traversal, kernel, pattern]
    per_stream = tf.reduce_sum(joint * tables.per_stream[layer.name], axis=[3, 4])
    kind = layer_kind(layer)
    areas = [layer.kernel_area(k) for k in layer.kernel_sizes]
    target = tables.target
    rows = [[[0 if target is None else target.weight_traversal(kind, w, area), m] for w in widths_in]
            for m, area in enumerate(areas)]  # [kernel, input width] -> (traversal, kernel)

    def gathered(table):  # [kernel, input width, pattern] -> [kernel, pattern, input width]
        return tf.transpose(tf.gather_nd(table, rows), [0, 2, 1])

    return gathered(per_weight), gathered(per_stream), areas


def network_expected_bytes(layers, tables: CodecTables, extra_bytes=0.0):
    """Sum of `layer_expected_bytes` over the layers plus fixed `extra_bytes` (a differentiable scalar)."""
    return tf.add_n([layer_expected_bytes(layer, tables) for layer in layers]) + float(extra_bytes)
