"""Searchable layers and the option lists they are built from."""

import numpy as np
import pytest

from udc.compat import keras, tf
from udc.errors import ConfigError
from udc.search.settings import straight_through_at
from udc.space import children
from udc.space import layers as L
from udc.space import options as opts
from udc.space.dimensions import magnitude_masks
from udc.targets import get_target

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- options
def test_default_options():
    assert opts.width_options(32) == (8, 16, 24, 32)
    assert opts.width_options(10) == (8, 10)  # a classifier's own width is always kept
    assert opts.sparsity_options() == (0.0, 0.25, 0.5, 0.75, 0.9)
    assert opts.bit_options() == (2, 3, 4, 5, 6, 8)
    assert opts.SearchOptions.for_target(get_target("ethos-u55-128")).widths_for(32) == (8, 16, 24, 32)
    assert opts.SearchOptions.for_target(get_target("ethos-u65-512")).widths_for(64) == (16, 32, 48, 64)
    assert opts.SearchOptions(widths=(16, 32)).widths_for(24) == (16, 24)


@pytest.mark.parametrize("call, match", [
    (lambda: opts.width_options(64, 8, []), "empty"),
    (lambda: opts.width_options(64, 8, [32, 16]), "strictly increasing"),
    (lambda: opts.width_options(64, 8, [16, 16]), "strictly increasing"),
    (lambda: opts.width_options(64, 8, [12, 64]), "multiple of the target's channel alignment 8"),
    (lambda: opts.width_options(64, 8, [16, 128]), "exceeds"),
    (lambda: opts.sparsity_options([]), "empty"),
    (lambda: opts.sparsity_options([0.5, 0.25]), "strictly increasing"),
    (lambda: opts.sparsity_options([0.0, 1.0]), r"--config.search.sparsities must be fractions in \[0, 1\)"),
    (lambda: opts.bit_options([4, 16]), "--config.search.bits must be integers from 2 to 8"),
    (lambda: opts.bit_options([1, 4]), "--config.search.bits must be integers from 2 to 8"),
    (lambda: opts.bit_options([8, 4]), "strictly increasing"),
    (lambda: opts.SearchOptions(bits=()), "empty"),
])
def test_bad_option_lists_raise_one_line_config_errors(call, match):
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- layers
def _conv(**kw):
    layer = L.SearchableConv2D(16, 3, batch_norm=True, activation="relu", **kw)
    layer.build((None, 6, 6, 4))
    return layer


def test_layer_holds_largest_shape_and_one_logit_per_option():
    layer = _conv()
    assert layer.kernel.shape == (3, 3, 4, 16)
    assert layer.widths == (8, 16)
    assert layer.width_logits.shape == (2,) and layer.sparsity_logits.shape == (5,)
    assert layer.bits_logits.shape == (6,)
    probs = layer.choice_probabilities()
    for p in probs.values():
        np.testing.assert_allclose(p.numpy().sum(), 1.0, rtol=1e-6)
    assert len(layer.architecture_variables()) == 3


def test_the_decoded_option_is_the_median_whose_channels_the_mixture_keeps_at_half_weight_or_more():
    """Decoding takes the median, not the argmax: for probabilities [0.4, 0.2, 0.2, 0.2] the argmax is the
    first option, the median the second; the width mixture (inference, no noise) keeps exactly the decoded
    width's channels with weight >= 1/2 (module doc)."""
    probabilities = np.array([0.4, 0.2, 0.2, 0.2], np.float32)
    assert int(L.decoded_index(tf.constant(np.log(probabilities)))) == 1
    layer = L.SearchableConv2D(32, 3, batch_norm=True, activation="relu")
    layer.build((None, 6, 6, 4))
    assert layer.widths == (8, 16, 24, 32)
    layer.width_logits.assign(np.log(probabilities))
    assert layer.hard_choice()["width"] == 16
    layer(RNG.normal(size=(1, 6, 6, 4)).astype(np.float32), training=False)
    kept = layer.last_width_mask.numpy()
    np.testing.assert_allclose(kept, [1.0] * 8 + [0.6] * 8 + [0.4] * 8 + [0.2] * 8, rtol=1e-5)
    assert int(np.sum(kept >= 0.5)) == layer.hard_choice()["width"]


def test_within_inference_weights_a_training_pass_weighs_options_as_inference_does():
    """BatchNorm recalibration of the mixture runs in training mode: within `inference_weights` the soft
    weights are softmax(logits), no Gumbel sample, so a training pass (no BatchNorm here) computes what
    inference computes; outside the block it draws samples again."""
    layer = L.SearchableConv2D(32, 3, activation="relu")
    layer.build((None, 6, 6, 4))
    layer.width_logits.assign([0.5, 0.0, -0.5, 0.2])
    layer.bits_logits.assign([0.3, 0.0, 0.1, -0.2, 0.0, 0.4])
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    inference = layer(x, training=False).numpy()
    L.use_noise_generator(tf.random.Generator.from_seed(0))
    try:
        with L.inference_weights():
            quiet = layer(x, training=True).numpy()
        sampled = layer(x, training=True).numpy()
    finally:
        L.use_noise_generator(None)
    np.testing.assert_allclose(quiet, inference, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(sampled - inference)) > 1e-3


def test_straight_through_samples_are_one_hot_and_pass_gradients_to_the_logits():
    """Within `straight_through_samples` a training pass weighs one option per choice (a one-hot draw)
    and the logits still get a gradient; outside it the weights are relaxed again."""
    layer = L.SearchableConv2D(32, 3, activation="relu")
    layer.build((None, 6, 6, 4))
    layer.width_logits.assign([0.5, 0.0, -0.5, 0.2])
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    direction = RNG.normal(size=(2, 6, 6, 32)).astype(np.float32)
    L.use_noise_generator(tf.random.Generator.from_seed(0))
    try:
        with L.straight_through_samples():
            with tf.GradientTape() as tape:
                # Linear in the output: masked channels still get a gradient, as under a next layer.
                loss = tf.reduce_sum(layer(x, training=True) * direction)
            sampled_mask = layer.last_width_mask.numpy()
            gradient = tape.gradient(loss, layer.width_logits)
        layer(x, training=True)
        relaxed_mask = layer.last_width_mask.numpy()
    finally:
        L.use_noise_generator(None)
    # The channel mask of one width option: ones up to it, zeros after.
    assert set(sampled_mask.tolist()) == {0.0, 1.0} and int(sampled_mask.sum()) in layer.widths
    assert np.all(np.diff(sampled_mask) <= 0)
    assert np.all(np.isfinite(gradient.numpy())) and np.max(np.abs(gradient.numpy())) > 0
    assert len(set(np.round(relaxed_mask, 6).tolist()) - {0.0, 1.0}) > 0  # fractional again


def test_relaxed_then_straight_through_samples_children_in_the_second_half_only():
    steps = [straight_through_at("relaxed_then_straight_through", i, 10) for i in range(10)]
    assert steps == [False] * 5 + [True] * 5
    assert not any(straight_through_at("gumbel_softmax", i, 10) for i in range(10))
    assert all(straight_through_at("straight_through", i, 10) for i in range(10))
    layer = L.SearchableConv2D(32, 3, activation="relu")
    layer.build((None, 6, 6, 4))
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    with L.straight_through_samples(False):
        layer(x, training=True)
    assert len(set(np.round(layer.last_width_mask.numpy(), 6).tolist()) - {0.0, 1.0}) > 0  # relaxed


def test_a_traced_pass_computes_what_the_choice_at_run_time_computes():
    """`traced_pass` only leaves the other branch untraced: the soft and the exact pass give what the
    layer's tf.cond on its child variable gives."""
    layer = _conv()
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    soft = layer(x, training=False).numpy()
    with L.traced_pass("soft"):
        np.testing.assert_array_equal(layer(x, training=False).numpy(), soft)
    children.use_smallest([layer])
    try:
        exact = layer(x, training=False).numpy()
        with L.traced_pass("exact"):
            np.testing.assert_array_equal(layer(x, training=False).numpy(), exact)
    finally:
        children.release([layer])
    assert np.max(np.abs(exact - soft)) > 1e-3


def test_hard_mode_applies_the_decoded_choice():
    layer = _conv()
    layer.width_logits.assign([3.0, 0.0])        # width 8
    layer.sparsity_logits.assign([0, 0, 0, 5.0, 0])  # 75 %
    layer.bits_logits.assign([0, 0, 4.0, 0, 0, 0])   # 4 bits
    layer.hard.assign(1.0)
    assert layer.hard_choice() == {"width": 8, "kernel_size": 3, "pattern": "dense", "sparsity": 0.75, "bits": 4}
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    y = layer(x, training=True).numpy()
    assert np.all(y[..., 8:] == 0) and np.any(y[..., :8] != 0)
    k = layer.effective_kernel(training=True).numpy()
    assert np.mean(k == 0) >= 0.75
    for c in range(16):
        assert len(np.unique(k[..., c])) <= 15
    np.testing.assert_array_equal(layer.choice_probabilities()["width"].numpy(), [1.0, 0.0])


def test_an_exact_child_at_its_own_widths_equals_the_full_width_masked_network():
    """Child mode computes each layer at its chosen (input, output) widths and pads the output with
    zeros: outputs and gradients equal the full-width operations on the zero-padded sub-kernels."""
    inputs = keras.Input((6, 6, 3))
    conv = L.SearchableConv2D(24, 3, batch_norm=True, activation="relu", name="conv")
    dw = L.SearchableDepthwiseConv2D(3, batch_norm=True, activation="relu", input_from=conv, name="dw")
    conv2 = L.SearchableConv2D(16, 1, batch_norm=True, activation="relu", input_from=dw, name="conv2")
    dense = L.SearchableDense(10, widths=[10], input_from=conv2, name="logits")
    pooled = keras.layers.GlobalAveragePooling2D()(conv2(dw(conv(inputs))))
    model = keras.Model(inputs, dense(pooled))
    chosen = {"conv": (16, 0.5, 3), "dw": (24, 0.25, 4), "conv2": (8, 0.75, 2), "logits": (10, 0.25, 5)}
    children.use_choices(L.searchable_layers(model), {
        name: dict(zip(("width", "sparsity", "bits"), choice)) for name, choice in chosen.items()})
    def convolve(x, k):
        return tf.nn.conv2d(x, k, 1, "SAME")

    ops = {"conv": convolve, "dw": lambda x, k: tf.nn.depthwise_conv2d(x, k, (1, 1, 1, 1), "SAME"), "conv2": convolve}

    def masked(x):
        """The same child at full width: every kernel zero-padded, every output masked."""
        for layer in (conv, dw, conv2):
            kernel = layer.effective_kernel(training=True)
            y = layer.activation(layer.bn(ops[layer.name](x, kernel), training=True))
            width = chosen[L.width_source(layer).name if layer is dw else layer.name][0]
            x = y * np.array([1.0] * width + [0.0] * (layer.max_width - width), np.float32)
        return tf.matmul(tf.reduce_mean(x, axis=(1, 2)), dense.effective_kernel(training=True)) + dense.bias

    images = RNG.normal(size=(4, 6, 6, 3)).astype(np.float32)
    variables = [v for v in model.trainable_variables if "logits:" not in v.name or "kernel" in v.name]

    def outputs_and_gradients(forward):
        with tf.GradientTape() as tape:
            out = forward(images)
            loss = tf.reduce_sum(tf.square(out))
        return [out] + tape.gradient(loss, variables, unconnected_gradients="zero")

    for run in (lambda f: f, tf.function):
        exact = outputs_and_gradients(run(lambda x: model(x, training=True)))
        reference = outputs_and_gradients(run(masked))
        assert np.abs(exact[1].numpy()[..., 16:, :]).sum() == 0  # channels past the chosen width: no gradient
        for got, want in zip(exact, reference):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    children.release(L.searchable_layers(model))


def test_soft_mode_mixes_options_and_gradients_reach_weights_and_every_logit():
    layer = _conv()
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    grads = tape.gradient(loss, [layer.kernel] + layer.architecture_variables())
    assert all(g is not None for g in grads)
    assert np.abs(grads[0].numpy()).sum() > 0
    for g in grads[1:]:
        assert np.abs(g.numpy()).sum() > 0


def test_gumbel_samples_sharpen_as_temperature_falls():
    logits = tf.constant([1.0, 0.0, -1.0])
    # Its own generator: a search run earlier in this process leaves its generator installed.
    L.use_noise_generator(tf.random.Generator.from_seed(0))
    try:
        hot = np.mean([L._gumbel_softmax(logits, 5.0).numpy().max() for _ in range(200)])
        cold = np.mean([L._gumbel_softmax(logits, 0.1).numpy().max() for _ in range(200)])
    finally:
        L.use_noise_generator(None)
    assert cold > 0.9 and hot < 0.6
    assert L.temperature_at(0, 100) == pytest.approx(5.0)
    assert L.temperature_at(100, 100) == pytest.approx(0.5)
    assert L.temperature_at(50, 100) == pytest.approx(np.sqrt(5.0 * 0.5))


def test_magnitude_masks_keep_the_largest_weights():
    w = tf.constant(np.arange(1, 101, dtype=np.float32).reshape(10, 10))
    masks = magnitude_masks(w, (0.0, 0.5, 0.9))
    assert [int(m.numpy().sum()) for m in masks] == [100, 50, 10]
    assert masks[2].numpy().ravel()[-10:].all()


def test_depthwise_follows_its_inputs_width_and_dense_keeps_classes():
    inputs = keras.Input((6, 6, 3))
    conv = L.SearchableConv2D(16, 3, batch_norm=True, activation="relu", name="conv")
    dw = L.SearchableDepthwiseConv2D(3, batch_norm=True, activation="relu", input_from=conv, name="dw")
    dense = L.SearchableDense(10, widths=[10], input_from=dw, name="logits")
    x = dw(conv(inputs))
    outputs = dense(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    assert [l.name for l in L.searchable_layers(model)] == ["conv", "dw", "logits"]
    assert dw.kernel.shape == (3, 3, 16, 1) and dw.widths == (16,) and dense.widths == (10,)
    conv.width_logits.assign([2.0, 0.0])
    L.set_hard(model, True)
    L.set_temperature(model, 1.0)
    images = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)
    features = keras.Model(inputs, x)
    for run in (lambda m: m(images, training=False), tf.function(lambda m: m(images, training=True))):
        out = run(features).numpy()
        assert np.all(out[..., 8:] == 0) and np.any(out[..., :8] != 0)
    # fit() works (compiled, temperature annealed by the callback).
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    L.set_hard(model, False)
    model.fit(images, np.array([1, 2]), epochs=2, verbose=0, callbacks=[L.TemperatureAnnealing(2)])
    assert conv.temperature.numpy() == pytest.approx(L.temperature_at(1, 2))
    assert len(L.architecture_variables(model)) == 9
