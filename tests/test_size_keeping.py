"""The fine-tune's size keeper: each grid layer held at the encoded bytes it started with."""

import numpy as np

from udc.compat import keras
from udc.deploy.finetune import quantize_model
from udc.deploy.size_keeping import LOG2_FACTOR_RANGE, TOLERANCE, SizeKeeper
from udc.targets import get_target

TARGET = get_target("ethos-u55-128")
BITS = {"conv": 3, "wide": 8, "logits": 4}


def _qat():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(128, 1, activation="relu", name="wide")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    plain = keras.Model(inputs, keras.layers.Dense(32, name="logits")(x))
    rng = np.random.default_rng(1)  # trained kernels are peaky, not uniform like a fresh initialiser
    plain.set_weights([rng.laplace(scale=0.05, size=w.shape).astype(np.float32) for w in plain.get_weights()])
    return quantize_model(plain, BITS)


def _kernels(qat):
    return {name: next(w for w, _, _ in qat.get_layer(f"quant_{name}")._weight_vars) for name in BITS}


def test_unmoved_weights_keep_their_step():
    keeper = SizeKeeper(_qat(), TARGET)
    assert set(keeper.targets) == set(BITS)
    assert keeper.keep() == {name: 1.0 for name in BITS}
    assert keeper.sizes() == keeper.targets


def test_drifted_layers_come_back_to_their_bytes_and_the_ranges_follow():
    qat = _qat()
    keeper = SizeKeeper(qat, TARGET)
    kernels = _kernels(qat)
    conv = kernels["conv"].numpy()
    conv[0, 0, 0, :] *= 6.0  # one weight per channel grew: a max-based step thins every other code
    kernels["conv"].assign(conv)
    logits = kernels["logits"].numpy()
    top = np.abs(logits).max()
    kernels["logits"].assign(np.clip(1.5 * logits, -top, top))  # the bulk grew, not the largest: codes widen
    drifted = SizeKeeper(qat, TARGET).targets  # bytes at the max-based step
    assert drifted["conv"] < (1 - TOLERANCE) * keeper.targets["conv"]
    assert drifted["logits"] > keeper.targets["logits"]
    factors = keeper.keep()
    assert factors["conv"] < 1.0 < factors["logits"]
    sizes = keeper.sizes()
    for name in ("conv", "logits"):
        assert (1 - TOLERANCE) * keeper.targets[name] <= sizes[name] <= keeper.targets[name], (name, sizes)
    quantizer, range_vars = next((q, v) for _, q, v in qat.get_layer("quant_conv")._weight_vars)
    np.testing.assert_allclose(range_vars["max_var"].numpy(), quantizer.grid_range(kernels["conv"]).numpy())
    assert keeper.keep() == factors  # a function of the weights alone (a resumed fine-tune sets the same)


def test_a_layer_the_finest_step_cannot_bring_back_takes_it_when_it_wins_back_most_bytes():
    qat = _qat()
    keeper = SizeKeeper(qat, TARGET)
    kernels = _kernels(qat)
    conv = kernels["conv"].numpy()
    conv[0, 0, 0, :] *= 20.0  # far more than a halved step can undo
    kernels["conv"].assign(conv)
    layer = next(l for l in keeper.layers if l.name == "conv")
    at_one, finest = layer.bytes_at(1.0), layer.bytes_at(2.0 ** -LOG2_FACTOR_RANGE)
    lower = (1 - TOLERANCE) * keeper.targets["conv"]
    assert at_one < finest < lower and finest - at_one >= (lower - at_one) / 2
    assert keeper.keep()["conv"] == 2.0 ** -LOG2_FACTOR_RANGE
    assert at_one < keeper.sizes()["conv"] <= keeper.targets["conv"]
