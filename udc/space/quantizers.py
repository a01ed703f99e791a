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
`<name>_max` variables (the names `udc.deploy.convert.dead_channels_widened` looks for): set
from the weights in training, and in inference the grid step is derived from the
stored range, so the grid and the fake-quant range never disagree even if the weights
moved after the last training step.

In training the step is `step_factor` (a variable, 1 by default) times max|w| / qmax:
`udc.deploy.size_keeping` moves the factor during the fine-tune so that each layer's codes keep
the encoded size the search selected (a factor below 1 clips the largest weights to the
outer levels, above 1 coarsens the grid).
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


def grid_codes(w, bits: int, channel_axis=None, step_factor=1.0):
    """The int8 codes the exported tensor will hold: grid level k -> k * (127 // qmax), the
    step `step_factor` times the max-based one (see `GridWeightQuantizer`).

    numpy in, numpy int8 out; used by the size model to feed the real codec.
    """
    w = tf.convert_to_tensor(w, tf.float32)
    scale = grid_scale(w, bits, channel_axis) * float(step_factor)
    qmax = float(qmax_for(bits))
    levels = tf.clip_by_value(tf.math.round(tf.math.divide_no_nan(w, scale)), -qmax, qmax)
    return (levels.numpy() * code_step(bits)).astype("int8")


# --------------------------------------------------------------------------- tfmot QAT

import tensorflow_model_optimization as tfmot  # noqa: E402  (after compat picked tf_keras)

_quantizers = tfmot.quantization.keras.quantizers


class GridWeightQuantizer(_quantizers.Quantizer):
    """tfmot weight quantizer: b-bit grid inside an 8-bit narrow-range fake-quant.

    per_axis=True: one range per output channel (the last axis; axis 2 of a depthwise HWC1 kernel with
    depthwise=True); use it for convolutions, not Dense.
    """

    def __init__(self, bits: int, per_axis: bool = False, depthwise: bool = False):
        qmax_for(bits)  # validates
        self.bits = int(bits)
        self.per_axis = bool(per_axis)
        self.depthwise = bool(depthwise)
        # Not a layer weight: the exported range already holds the step, and a fine-tune sets it anew.
        self.step_factor = tf.Variable(1.0, trainable=False, dtype=tf.float32)

    def _channel_axis(self, shape):
        """The output-channel axis: the last, or 2 for a depthwise HWC1 kernel."""
        return 2 if self.depthwise else len(shape) - 1

    def _scale_shape(self, shape):
        return [-1 if axis == self._channel_axis(shape) else 1 for axis in range(len(shape))]

    def _channels_last(self, shape):
        return [int(n) for axis, n in enumerate(shape) if axis != self._channel_axis(shape)] + [
            int(shape[self._channel_axis(shape)])]

    def build(self, tensor_shape, name, layer):
        shape = (int(tensor_shape[self._channel_axis(tensor_shape)]),) if self.per_axis else ()
        init = keras.initializers.Constant
        low = layer.add_weight(name + "_min", shape=shape, initializer=init(-6.0), trainable=False)
        high = layer.add_weight(name + "_max", shape=shape, initializer=init(6.0), trainable=False)
        return {"min_var": low, "max_var": high}

    def grid_range(self, kernel):
        """The fake-quant range's upper end for `kernel` (per channel or scalar): 127 codes of
        size s / code step, with s the grid step (`step_factor` * max|w| / qmax)."""
        s = grid_scale(kernel, self.bits, self._channel_axis(kernel.shape) if self.per_axis else None) * self.step_factor
        s_flat = tf.reshape(s, [-1]) if self.per_axis else tf.reshape(s, [])
        return s_flat * (INT8_QMAX / float(code_step(self.bits)))

    def __call__(self, inputs, training, weights, **kwargs):
        step = float(code_step(self.bits))

        def set_range_from_weights():
            high = self.grid_range(inputs)
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
            s = tf.reshape(s, self._scale_shape(inputs.shape))
        gridded = round_to_grid(inputs, s, self.bits)
        low = -high
        if self.per_axis:
            # A depthwise HWC1 kernel has its channels on axis 2: as HW1C (the same order in memory) they are last.
            quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
                tf.reshape(gridded, self._channels_last(gridded.shape)), low, high, num_bits=8, narrow_range=True)
            return tf.reshape(quantized, tf.shape(gridded))
        return tf.quantization.fake_quant_with_min_max_vars(gridded, low, high, num_bits=8, narrow_range=True)

    def get_config(self):
        return {"bits": self.bits, "per_axis": self.per_axis, "depthwise": self.depthwise}

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
    the pair and silently replaces this config (see docs/stack_facts.md).
    """

    def __init__(self, bits: int, per_axis: bool = True):
        self.bits = int(bits)
        self.per_axis = bool(per_axis)

    @staticmethod
    def _kernel_attribute(layer):
        return "depthwise_kernel" if hasattr(layer, "depthwise_kernel") else "kernel"

    def get_weights_and_quantizers(self, layer):
        attribute = self._kernel_attribute(layer)
        # A depthwise kernel is HWC1: one range per channel (axis 2), as the searchable layer's grid and the int8
        # file's per-channel scales have it.
        return [(getattr(layer, attribute),
                 GridWeightQuantizer(self.bits, self.per_axis, depthwise=attribute == "depthwise_kernel"))]

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
