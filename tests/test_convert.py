"""Int8 conversion, including a model with a fully pruned output channel whose bias is positive."""

import contextlib

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

from udc import tflite_file
from udc.compat import keras
from udc.deploy import convert
from udc.deploy.interpreter import TfliteClassifier
from udc.training.backbone import compile_for_training, keras_accuracy

DEAD = 5  # output channel of conv2 that gets pruned


def test_int8_model_has_batch_one_and_int8_io(digits_int8):
    classifier = TfliteClassifier(digits_int8)
    assert classifier.input_shape == (8, 8, 1) and classifier.num_classes == 10
    model = tflite_file.parse(digits_int8)
    graph = model.subgraphs[0]
    assert list(graph.tensors[graph.inputs[0]].shape) == [1, 8, 8, 1]
    assert {w.dtype for w in tflite_file.weight_tensors(model)} == {"INT8"}


def test_int8_accuracy_matches_keras(trained_digits_model, digits_int8, digits_splits):
    tflite = TfliteClassifier(digits_int8).accuracy(digits_splits.test.x, digits_splits.test.y)
    assert tflite > 0.8
    assert abs(tflite - keras_accuracy(trained_digits_model, digits_splits.test)) <= 0.003


def _kill_channel(model, conv_name, bn_name, beta=1.5):
    conv, bn = model.get_layer(conv_name), model.get_layer(bn_name)
    weights = conv.get_weights()
    weights[0][..., DEAD] = 0.0
    conv.set_weights(weights)
    gamma, old_beta, mean, var = bn.get_weights()
    old_beta[DEAD] = beta
    bn.set_weights([gamma, old_beta, mean, var])


def test_float_model_with_a_dead_positive_bias_channel(trained_digits_model, digits_splits):
    model = keras.models.clone_model(trained_digits_model)
    model.set_weights(trained_digits_model.get_weights())
    _kill_channel(model, "conv2", "bn2")
    data = convert.convert_to_int8(model, digits_splits.train.x[:128])
    assert convert.saturated_biases(data) == 0
    tflite = TfliteClassifier(data).accuracy(digits_splits.test.x, digits_splits.test.y)
    assert abs(tflite - keras_accuracy(model, digits_splits.test)) <= 0.003


@pytest.fixture(scope="module")
def qat_model_with_dead_channel(trained_digits_model, digits_splits):
    """A tfmot QAT model whose conv2 channel is pruned: zero kernel and a [0, 0] range."""
    model = keras.models.clone_model(trained_digits_model)
    model.set_weights(trained_digits_model.get_weights())
    _kill_channel(model, "conv2", "bn2")
    qat = compile_for_training(tfmot.quantization.keras.quantize_model(model), 1e-4)
    qat.fit(digits_splits.train.tf_dataset(32), epochs=1, verbose=0)
    for variable in qat.get_layer("quant_conv2").weights:
        if variable.name.endswith(("kernel:0", "kernel_min:0", "kernel_max:0")):
            values = variable.numpy()
            values[..., DEAD] = 0.0
            variable.assign(values)
    # A bias well above what a near-zero weight scale can hold in int32.
    bn = next(layer for layer in qat.layers if layer.name.endswith("bn2"))
    for variable in bn.weights:
        for suffix, value in (("beta:0", 20.0), ("moving_mean:0", 0.0)):
            if variable.name.endswith(suffix):
                values = variable.numpy()
                values[DEAD] = value
                variable.assign(values)
    return qat


def test_without_the_guard_the_qat_bias_saturates(qat_model_with_dead_channel, digits_splits, monkeypatch):
    monkeypatch.setattr(convert, "dead_channels_widened", lambda model: contextlib.nullcontext(0))
    data = convert.convert_to_int8(qat_model_with_dead_channel, digits_splits.train.x[:64])
    assert convert.saturated_biases(data) > 0  # the trap this module guards against is real


def test_qat_model_with_a_dead_positive_bias_channel(qat_model_with_dead_channel, digits_splits):
    qat = qat_model_with_dead_channel
    before = [v.numpy().copy() for v in qat.weights]
    data = convert.convert_to_int8(qat, digits_splits.train.x[:64])
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, qat.weights))  # ranges restored
    assert convert.saturated_biases(data) == 0
    conv2 = tflite_file.weight_tensors(tflite_file.parse(data))[2]
    assert not conv2.values[DEAD].any() and conv2.scales[DEAD] >= 0.5 * np.median(conv2.scales)
    tflite = TfliteClassifier(data).accuracy(digits_splits.test.x, digits_splits.test.y)
    assert abs(tflite - keras_accuracy(qat, digits_splits.test)) <= 0.003
