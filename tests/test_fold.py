"""Folding BatchNorm and ReLU into the layer before them keeps what the model computes."""

import numpy as np

from udc.compat import keras
from udc.deploy.fold import fold_batch_norm
from udc.models import resnet8


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


def test_a_residual_model_folds_and_computes_the_same():
    keras.utils.set_random_seed(0)
    model = resnet8((12, 12, 3), 10, widths=(8, 8, 16))
    x = np.random.default_rng(0).random((4, 12, 12, 3)).astype(np.float32)
    model(x, training=True)  # batch statistics far from the initial ones
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.linspace(-0.2, 0.2, layer.moving_mean.shape[0]).astype(np.float32))
    folded = fold_batch_norm(model)
    assert not [l for l in folded.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert [l.name for l in folded.layers if isinstance(l, keras.layers.Add)] == [
        "stack1_add", "stack2_add", "stack3_add"]
    np.testing.assert_allclose(folded(x).numpy(), model(x, training=False).numpy(), rtol=1e-4, atol=1e-5)
