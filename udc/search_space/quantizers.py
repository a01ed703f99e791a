"""The b-bit weight grid, kept inside int8 (never INT4 tensors: Vela 5.2 crashes on them).

A weight tensor `w` is rounded to a symmetric grid of `2^b - 1` levels:

    qmax = 2^(b-1) - 1,  s = max|w| / qmax,  w_q = s * round(clip(w / s, -qmax, qmax))

with a straight-through gradient (d w_q / d w = 1), so it can sit inside a searchable
layer during search. Zeros stay zero (round(0) = 0), so sparsity survives quantization.
`s` is per output channel for convolutions (last axis of an HWIO kernel; axis 2 of a
depthwise HWC1 kernel) and per tensor for Dense, as in the exported model (per-axis
on Dense fails conversion).

For export, `GridWeightQuantizer` is a tfmot `Quantizer` for quantization-aware
training: after rounding to the grid it fake-quantizes at 8 bits, narrow range, with
a range that is a whole multiple of the grid step. Grid level k then lands exactly on
int8 code `k * (127 // qmax)`, so the converter writes INT8 tensors with at most
`2^b - 1` distinct values and the *same* codes in every channel (the codec's palette
only pays when every channel shares the codes). The range lives in `<name>_min` /
`<name>_max` variables (the names `udc.convert.dead_channels_widened` looks for): set
from the weights in training, and in inference the grid step is derived from the
stored range, so the grid and the fake-quant range never disagree even if the weights
moved after the last training step.

With `zero_counts` set (`udc.finetune` does it on 2-bit grids), the quantizer
keeps each channel's number of zero codes instead of deriving the step from max|w|: the
step puts the zero threshold between the k-th and (k+1)-th smallest |w|. On such grids
the share of zeros decides the codec's size, and a max-based step lets it drift as the
largest weights grow: on the Pareto benchmark's children, Vela's bytes of 2-bit layers
came out 16 % below the selection's figure after the fine-tune, and with the step frozen
instead they grew 32 %. Keeping the count keeps the size the search paid for (and on a
2-bit grid, every non-zero code is +-1 anyway).
"""

from udc.compat import keras, tf
from udc.errors import ConfigError

INT8_QMAX = 127
MIN_BITS, MAX_BITS = 2, 8


def qmax_for(bits: int) -> int:
    """Largest grid level of a symmetric b-bit grid (2 -> 1, 4 -> 7, 8 -> 127)."""
    bits = int(bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(f"weight bit-width {bits} is not supported; use {MIN_BITS}..{MAX_BITS} bits")
    return 2 ** (bits - 1) - 1


def code_step(bits: int) -> int:
    """Distance between neighbouring grid levels in int8 codes (127 // qmax)."""
    return INT8_QMAX // qmax_for(bits)


def _reduce_axes(rank: int, channel_axis):
    if channel_axis is None:
        return list(range(rank))
    channel_axis = channel_axis % rank
    return [a for a in range(rank) if a != channel_axis]


def grid_scale(w, bits: int, channel_axis=None):
    """Grid step s = max|w| / qmax, per channel (kept dims, broadcastable to w) or per tensor."""
    w = tf.convert_to_tensor(w)
    m = tf.reduce_max(tf.abs(w), axis=_reduce_axes(len(w.shape), channel_axis), keepdims=True)
    return m / float(qmax_for(bits))


def round_to_grid(w, scale, bits: int):
    """s * round(clip(w / s)) with a straight-through gradient; all-zero channels (s = 0) stay 0."""
    qmax = float(qmax_for(bits))
    levels = tf.clip_by_value(tf.math.round(tf.math.divide_no_nan(w, scale)), -qmax, qmax)
    return w + tf.stop_gradient(levels * scale - w)


def grid_quantize(w, bits: int, channel_axis=None):
    """Rounds `w` to its b-bit grid (straight-through). channel_axis=None: one scale per tensor."""
    w = tf.convert_to_tensor(w)
    return round_to_grid(w, grid_scale(w, bits, channel_axis), bits)


def grid_codes(w, bits: int, channel_axis=None):
    """The int8 codes the exported tensor will hold: grid level k -> k * (127 // qmax).

    numpy in, numpy int8 out; used by the size model to feed the real codec.
    """
    w = tf.convert_to_tensor(w, tf.float32)
    scale = grid_scale(w, bits, channel_axis)
    qmax = float(qmax_for(bits))
    levels = tf.clip_by_value(tf.math.round(tf.math.divide_no_nan(w, scale)), -qmax, qmax)
    return (levels.numpy() * code_step(bits)).astype("int8")


def _by_channel(w, per_axis):
    """w as [n, channels] (per_axis: the last axis) or [n, 1]."""
    return tf.reshape(w, [-1, w.shape[-1]]) if per_axis else tf.reshape(w, [-1, 1])


def zero_code_counts(w, bits: int, per_axis: bool):
    """Zero codes per output channel (per_axis) or in the tensor ([n]) of w on its max-based b-bit grid."""
    codes = grid_codes(w, bits, -1 if per_axis else None)
    return (_by_channel(codes, per_axis).numpy() == 0).sum(axis=0)


def zero_keeping_scale(w, counts, per_axis: bool):
    """The grid step that rounds exactly `counts` weights per channel to zero (or every exact zero,
    if a mask holds more): twice the midpoint between the k-th and (k+1)-th smallest |w|.
    Broadcastable to w as `grid_scale`'s result."""
    magnitudes = tf.sort(tf.abs(_by_channel(tf.convert_to_tensor(w), per_axis)), axis=0)
    n = magnitudes.shape[0]
    exact_zeros = tf.reduce_sum(tf.cast(magnitudes == 0, tf.int32), axis=0)
    k = tf.minimum(tf.maximum(tf.constant(counts, tf.int32), exact_zeros), n)
    by_row = tf.transpose(magnitudes)  # [channels, n]: the channel's sorted magnitudes

    def at(index):  # the index-th smallest |w| of every channel
        return tf.gather(by_row, tf.clip_by_value(index, 0, n - 1)[:, None], batch_dims=1)[:, 0]

    below = tf.where(k > 0, at(k - 1), 0.0)
    above = tf.where(k < n, at(k), 2.0 * magnitudes[-1])  # every code zero: any step above 2 max|w|
    step = below + above  # 2 * midpoint
    return tf.reshape(step, [1] * (len(w.shape) - 1) + [-1]) if per_axis else tf.reshape(step, [1] * len(w.shape))


# --------------------------------------------------------------------------- tfmot QAT

import tensorflow_model_optimization as tfmot  # noqa: E402  (after compat picked tf_keras)

_quantizers = tfmot.quantization.keras.quantizers


class GridWeightQuantizer(_quantizers.Quantizer):
    """tfmot weight quantizer: b-bit grid inside an 8-bit narrow-range fake-quant.

    per_axis=True: one range per output channel (last axis); use it for Conv2D only.
    """

    def __init__(self, bits: int, per_axis: bool = False):
        qmax_for(bits)  # validates
        self.bits = int(bits)
        self.per_axis = bool(per_axis)
        self.zero_counts = None  # zero codes to keep per channel (one entry per tensor); None: step from max|w|

    def build(self, tensor_shape, name, layer):
        shape = (int(tensor_shape[-1]),) if self.per_axis else ()
        init = keras.initializers.Constant
        low = layer.add_weight(name + "_min", shape=shape, initializer=init(-6.0), trainable=False)
        high = layer.add_weight(name + "_max", shape=shape, initializer=init(6.0), trainable=False)
        return {"min_var": low, "max_var": high}

    def __call__(self, inputs, training, weights, **kwargs):
        qmax, step = float(qmax_for(self.bits)), float(code_step(self.bits))
        axis = -1 if self.per_axis else None

        def set_range_from_weights():
            if self.zero_counts is None:
                s = grid_scale(inputs, self.bits, axis)
            else:
                s = zero_keeping_scale(inputs, self.zero_counts, self.per_axis)
            s_flat = tf.reshape(s, [-1]) if self.per_axis else tf.reshape(s, [])
            high = s_flat * (INT8_QMAX / step)  # range = 127 codes of size s / step
            weights["min_var"].assign(-high)
            weights["max_var"].assign(high)
            return tf.identity(high)

        if training is None:
            training = keras.backend.learning_phase()
        if isinstance(training, bool) or isinstance(training, int):
            high = set_range_from_weights() if training else tf.identity(weights["max_var"])
        else:
            high = tf.cond(tf.cast(training, tf.bool), set_range_from_weights,
                           lambda: tf.identity(weights["max_var"]))
        high = tf.stop_gradient(high)
        # The grid step always comes from the range, so codes are exact multiples of `step`.
        s = high * (step / INT8_QMAX)
        if self.per_axis:
            s = tf.reshape(s, [1] * (len(inputs.shape) - 1) + [-1])
        gridded = round_to_grid(inputs, s, self.bits)
        low = -high
        if self.per_axis:
            return tf.quantization.fake_quant_with_min_max_vars_per_channel(
                gridded, low, high, num_bits=8, narrow_range=True)
        return tf.quantization.fake_quant_with_min_max_vars(gridded, low, high, num_bits=8, narrow_range=True)

    def get_config(self):
        return {"bits": self.bits, "per_axis": self.per_axis}

    def __eq__(self, other):
        return isinstance(other, GridWeightQuantizer) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self.__eq__(other)


class GridQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """QuantizeConfig for a Conv2D / DepthwiseConv2D / Dense whose activation is inside the layer.

    Kernel: GridWeightQuantizer (per-axis for Conv2D if per_axis, per tensor for Dense
    (give per_axis=False) and DepthwiseConv2D); output:
    8-bit moving-average activation quantizer. Put the activation inside the layer
    (`activation="relu"`): with a separate ReLU layer tfmot's layout transform fuses
    the pair and silently replaces this config (see DESIGN.md).
    """

    def __init__(self, bits: int, per_axis: bool = True):
        self.bits = int(bits)
        self.per_axis = bool(per_axis)

    @staticmethod
    def _kernel_attribute(layer):
        return "depthwise_kernel" if hasattr(layer, "depthwise_kernel") else "kernel"

    def get_weights_and_quantizers(self, layer):
        attribute = self._kernel_attribute(layer)
        # A depthwise kernel is HWC1: a last-axis range would be one range for all channels
        # anyway, so it is quantized per tensor.
        per_axis = self.per_axis and attribute == "kernel"
        return [(getattr(layer, attribute), GridWeightQuantizer(self.bits, per_axis))]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        setattr(layer, self._kernel_attribute(layer), quantize_weights[0])

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {"bits": self.bits, "per_axis": self.per_axis}


CUSTOM_OBJECTS = {"GridWeightQuantizer": GridWeightQuantizer, "GridQuantizeConfig": GridQuantizeConfig}
