"""Warm start and distillation: the supernet's largest child is the float model; the KD loss wiring."""

import numpy as np
import pytest

from udc.compat import keras, tf
from udc.errors import UdcError
from udc.models import fmnist_cnn
from udc.search.warm_start import load_float_weights
from udc.space import SearchOptions, children, searchable_layers
from udc.space.supernet import fmnist_supernet
from udc.training.distillation import distillation_loss

WIDTHS = (8, 16, 16, 32, 32)


def test_the_largest_child_computes_the_float_model(digits_splits):
    keras.utils.set_random_seed(0)  # before the model is built: its initial weights must not depend on test order
    float_model = fmnist_cnn(digits_splits.input_shape, 10, widths=WIDTHS)
    float_model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    float_model.fit(digits_splits.train.x[:512], digits_splits.train.y[:512], epochs=1, verbose=0)
    supernet = fmnist_supernet(digits_splits.input_shape, 10, SearchOptions(), widths=WIDTHS)
    load_float_weights(supernet, float_model)
    layers = searchable_layers(supernet)
    children.use_largest(layers)
    x = digits_splits.test.x[:128]
    child = supernet(x, training=False).numpy()
    children.release(layers)
    expected = float_model(x, training=False).numpy()
    # Equal up to the 8-bit weight grid of the largest child (0.7 % of the largest logit here): a few
    # near-ties may flip, a child that did not load the float weights agrees on about a tenth.
    np.testing.assert_allclose(child, expected, atol=0.02 * np.abs(expected).max())
    assert np.mean(child.argmax(1) == expected.argmax(1)) >= 0.95


def test_a_float_model_of_other_widths_is_refused(digits_splits):
    supernet = fmnist_supernet(digits_splits.input_shape, 10, SearchOptions(), widths=WIDTHS)
    with pytest.raises(UdcError, match=r"layer conv0: the float model's kernel is \(3, 3, 1, 32\)"):
        load_float_weights(supernet, fmnist_cnn(digits_splits.input_shape, 10))


def test_distillation_loss():
    labels = tf.constant([0, 1])
    student = tf.constant([[2.0, 0.0], [0.0, 1.0]])
    task = distillation_loss(labels, student, student * 3, weight=0.0)
    assert float(task) == pytest.approx(float(tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels, student))))
    # A student equal to its teacher has zero KL: only (1 - w) of the task loss is left.
    assert float(distillation_loss(labels, student, student, weight=0.5, temperature=2.0)) == pytest.approx(
        0.5 * float(task), rel=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(student)
        teacher = tf.constant([[0.0, 3.0], [3.0, 0.0]])
        loss = distillation_loss(labels, student, teacher, weight=1.0)
    assert float(loss) > 0 and float(tf.reduce_sum(tf.abs(tape.gradient(loss, student)))) > 0
