"""The b-bit grid: distinct values, zeros kept, straight-through gradient, int8 export."""

import numpy as np
import pytest

from udc.compat import keras, tf
from udc.errors import ConfigError
from udc.space import quantizers as q

BITS = (2, 3, 4, 5, 6, 8)


@pytest.mark.parametrize("bits", BITS)
def test_grid_has_at_most_2b_minus_1_values_per_channel_and_keeps_zeros(bits):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(3, 3, 8, 16)).astype(np.float32)
    w[rng.random(w.shape) < 0.5] = 0.0
    out = q.grid_quantize(w, bits, channel_axis=-1).numpy()
    for c in range(w.shape[-1]):
        assert len(np.unique(out[..., c])) <= 2**bits - 1
    assert np.all(out[w == 0] == 0)
    # Levels are integers times the per-channel scale, and the extremes are kept.
    scale = np.abs(w).max(axis=(0, 1, 2)) / q.qmax_for(bits)
    levels = out / scale
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    np.testing.assert_allclose(np.abs(out).max(axis=(0, 1, 2)), np.abs(w).max(axis=(0, 1, 2)), rtol=1e-6)


def test_low_bit_grid_uses_all_levels_and_per_tensor_scale():
    w = np.linspace(-1, 1, 101, dtype=np.float32).reshape(101, 1)
    assert sorted(np.unique(q.grid_quantize(w, 2).numpy())) == [-1.0, 0.0, 1.0]
    assert len(np.unique(q.grid_quantize(w, 4).numpy())) == 15


def test_gradient_is_straight_through():
    w = tf.Variable(np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(q.grid_quantize(w, 3) * 2.0)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 2.0)


def test_all_zero_channel_stays_zero_without_nans():
    w = np.zeros((3, 3, 2, 4), np.float32)
    w[..., 1] = 0.5
    out = q.grid_quantize(w, 4, channel_axis=-1).numpy()
    assert np.isfinite(out).all() and np.all(out[..., 0] == 0)


def test_step_factor_scales_the_grid_step_and_clips_the_largest_weights_below_1():
    w = np.random.default_rng(2).normal(size=(3, 3, 8, 6)).astype(np.float32)
    step = q.code_step(4)
    plain = q.grid_codes(w, 4, channel_axis=-1).astype(int) // step
    finer = q.grid_codes(w, 4, channel_axis=-1, step_factor=0.5).astype(int) // step
    coarser = q.grid_codes(w, 4, channel_axis=-1, step_factor=2.0).astype(int) // step
    assert np.abs(plain).max() == 7 and np.abs(coarser).max() <= 4  # max|w| lands on 7, then on 3.5 -> 4
    assert (np.abs(finer) == 7).sum() > (np.abs(plain) == 7).sum()  # clipped to the outer level
    assert (coarser == 0).sum() > (plain == 0).sum() > (finer == 0).sum()
    quantizer = q.GridWeightQuantizer(4, per_axis=True)
    quantizer.step_factor.assign(0.5)
    high = quantizer.grid_range(w).numpy()
    np.testing.assert_allclose(high * step / 127, 0.5 * np.abs(w).max(axis=(0, 1, 2)) / 7, rtol=1e-6)


@pytest.mark.parametrize("bits", [1, 9, 16])
def test_unsupported_bits_raise_config_error(bits):
    with pytest.raises(ConfigError, match="2..8"):
        q.qmax_for(bits)


def test_codes_are_multiples_of_the_step():
    w = np.random.default_rng(1).normal(size=(3, 3, 4, 8)).astype(np.float32)
    codes = q.grid_codes(w, 3, channel_axis=-1)
    assert codes.dtype == np.int8
    assert set(np.unique(codes)) <= {k * 42 for k in range(-3, 4)}


def _qat_model(bits):
    import tensorflow_model_optimization as tfmot

    annotate = tfmot.quantization.keras.quantize_annotate_layer
    inputs = keras.Input((8, 8, 1))
    x = annotate(keras.layers.Conv2D(16, 3, activation="relu", name="conv"),
                 q.GridQuantizeConfig(bits, per_axis=True))(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = annotate(keras.layers.Dense(5, name="dense"), q.GridQuantizeConfig(bits, per_axis=False))(x)
    model = keras.Model(inputs, x)
    with tfmot.quantization.keras.quantize_scope(q.CUSTOM_OBJECTS):
        return tfmot.quantization.keras.quantize_apply(keras.models.clone_model(model))


@pytest.mark.parametrize("bits", [3, 4])
def test_qat_export_writes_int8_with_the_same_few_codes_in_every_channel(bits):
    from udc import tflite_file
    from udc.deploy.convert import convert_to_int8

    model = _qat_model(bits)
    conv = next(l for l in model.layers if l.name.endswith("conv"))
    assert isinstance(conv.quantize_config, q.GridQuantizeConfig)  # not silently replaced
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    model(images, training=True)  # sets the ranges from the weights (one training step would)
    keras_out = model(images, training=False).numpy()
    data = convert_to_int8(model, images)
    tensors = tflite_file.weight_tensors(tflite_file.parse(data))
    assert len(tensors) == 2
    allowed = {k * q.code_step(bits) for k in range(-q.qmax_for(bits), q.qmax_for(bits) + 1)}
    for t in tensors:
        assert t.dtype == "INT8"
        values = set(np.unique(t.values).tolist())
        assert len(values) <= 2**bits - 1
        assert values <= allowed, (t.name, sorted(values))
    # The file computes what the Keras QAT model computes (within a few output codes).
    from udc.deploy.interpreter import TfliteClassifier

    clf = TfliteClassifier(data)
    raw = clf.raw_outputs(images).astype(np.float32)
    scale, zero = clf.output_quantization
    np.testing.assert_allclose((raw - zero) * scale, keras_out, atol=4 * scale + 1e-6)


def test_dead_channel_with_positive_bias_survives_export():
    """A fully pruned output channel must not saturate its int32 bias (docs/stack_facts.md)."""
    import tensorflow_model_optimization as tfmot

    from udc import tflite_file
    from udc.deploy.convert import convert_to_int8, saturated_biases
    from udc.deploy.interpreter import TfliteClassifier

    annotate = tfmot.quantization.keras.quantize_annotate_layer
    inputs = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(8, 3, activation="relu", name="conv")
    x = annotate(conv, q.GridQuantizeConfig(4, per_axis=True))(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(3, name="dense")
    x = annotate(dense, q.GridQuantizeConfig(4, per_axis=False))(x)
    model = keras.Model(inputs, x)
    kernel, bias = conv.get_weights()
    kernel[..., 2] = 0.0
    bias[:] = 0.05
    bias[2] = 0.5  # a dead channel whose output is a positive constant
    conv.set_weights([kernel, bias])
    with tfmot.quantization.keras.quantize_scope(q.CUSTOM_OBJECTS):
        qat = tfmot.quantization.keras.quantize_apply(model)
    images = np.random.default_rng(3).random((16, 6, 6, 2)).astype(np.float32)
    qat(images, training=True)
    keras_out = qat(images, training=False).numpy()
    data = convert_to_int8(qat, images)
    assert saturated_biases(data) == 0
    stored = tflite_file.weight_tensors(tflite_file.parse(data))[0].values
    assert np.all(stored[2] == 0)
    clf = TfliteClassifier(data)
    scale, zero = clf.output_quantization
    out = (clf.raw_outputs(images).astype(np.float32) - zero) * scale
    np.testing.assert_allclose(out, keras_out, atol=4 * scale + 1e-6)


def test_depthwise_grid_quantize_config_uses_the_depthwise_kernel():
    layer = keras.layers.DepthwiseConv2D(3)
    layer.build((None, 6, 6, 4))
    [(weight, quantizer)] = q.GridQuantizeConfig(3).get_weights_and_quantizers(layer)
    assert weight is layer.depthwise_kernel and quantizer.per_axis and quantizer.depthwise


def test_a_depthwise_kernel_takes_a_grid_per_channel_as_the_search_and_the_file_do():
    """Axis 2 of the HWC1 kernel: a per-tensor grid at 3 bits would zero a channel of small weights."""
    kernel = np.ones((3, 3, 4, 1), np.float32) * np.array([1.0, 0.5, 0.05, 0.01], np.float32)[None, None, :, None]
    kernel[0, 0] *= -1
    layer = keras.layers.DepthwiseConv2D(3)
    layer.build((None, 6, 6, 4))
    [(_, quantizer)] = q.GridQuantizeConfig(3).get_weights_and_quantizers(layer)
    variables = quantizer.build(kernel.shape, "kernel", layer)
    assert variables["max_var"].shape == (4,)
    out = quantizer(tf.constant(kernel), training=True, weights=variables).numpy()
    np.testing.assert_allclose(out, kernel, rtol=0.02)  # +-max of each channel is on its own grid
    np.testing.assert_allclose(out, q.grid_quantize(tf.constant(kernel), 3, 2).numpy(), rtol=0.02)
