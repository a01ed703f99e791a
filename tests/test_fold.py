"""Folding BatchNorm and ReLU into the layer before them keeps what the model computes."""

import numpy as np
import pytest

from udc.compat import keras
from udc.deploy.fold import fold_batch_norm
from udc.errors import UdcError


def test_folded_model_computes_the_same(trained_digits_model, digits_splits):
    folded = fold_batch_norm(trained_digits_model)
    kinds = {type(layer).__name__ for layer in folded.layers}
    assert not kinds & {"BatchNormalization", "ReLU"}
    assert all(layer.get_config()["activation"] == "relu" for layer in folded.layers if layer.name.startswith("conv"))
    x = digits_splits.test.x[:64]
    np.testing.assert_allclose(folded(x).numpy(), trained_digits_model(x, training=False).numpy(), atol=1e-4)


def test_zeros_stay_zeros(trained_digits_model):
    model = keras.models.clone_model(trained_digits_model)
    model.set_weights(trained_digits_model.get_weights())
    kernel = model.get_layer("conv1").kernel
    kernel.assign(kernel.numpy() * (np.arange(kernel.shape[-1]) % 2))  # every other output channel pruned
    folded = fold_batch_norm(model).get_layer("conv1").kernel.numpy()
    assert np.all(folded[..., 1::2] != 0) and np.all(folded[..., 0::2] == 0)


def test_branching_model_is_refused():
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    model = keras.Model(inputs, keras.layers.Add(name="add")([a, b]))
    with pytest.raises(UdcError, match="chains of layers"):
        fold_batch_norm(model)
