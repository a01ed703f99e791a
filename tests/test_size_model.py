"""The size model against Vela's codec and Vela itself, on random and trained weights."""

import itertools

import numpy as np
import pytest

from udc.compat import keras, tf
from udc.costs import size_model as sm
from udc.space import layers as L
from udc.targets import get_target

TARGET = get_target("ethos-u55-128")


def _pick(layer, width=None, sparsity=None, bits=None):
    def one_hot(options, value):
        return [5.0 if o == value else 0.0 for o in options]
    if width is not None:
        layer.width_logits.assign(one_hot(layer.widths, width))
    if sparsity is not None:
        layer.sparsity_logits.assign(one_hot(layer.sparsities, sparsity))
    if bits is not None:
        layer.bits_logits.assign(one_hot(layer.bits, bits))


def _supernet(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    c0 = L.SearchableConv2D(32, 3, batch_norm=True, activation="relu", name="c0")
    c1 = L.SearchableConv2D(64, 3, strides=2, batch_norm=True, activation="relu", input_from=c0, name="c1")
    fc = L.SearchableDense(10, widths=[10], input_from=c1, name="fc")
    x = keras.layers.GlobalAveragePooling2D()(c1(c0(inputs)))
    return keras.Model(inputs, fc(x)), [c0, c1, fc]


@pytest.fixture(scope="module")
def trained():
    """A supernet trained briefly on sklearn's 8x8 digits (real, peaky weights)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None][:1024]
    model, layers = _supernet()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    L.set_hard(model, True)  # train the largest, densest, 8-bit network
    for layer in layers:
        _pick(layer, width=layer.widths[-1], sparsity=0.0, bits=8)
    with L.traced_pass("exact"):  # hard mode: the soft branch never runs, so it is not traced
        history = model.fit(images, digits.target[:1024], batch_size=64, epochs=2, verbose=0)
    assert history.history["accuracy"][-1] > 0.5
    return model, layers, images


CHOICES = [  # (c0, c1) hard choices; fc keeps 10 units (full shapes: see the random-weights test)
    ({"width": 24, "sparsity": 0.5, "bits": 4}, {"width": 48, "sparsity": 0.75, "bits": 3}),
    ({"width": 16, "sparsity": 0.25, "bits": 2}, {"width": 56, "sparsity": 0.9, "bits": 6}),
]


def _apply(layers, choice):
    c0, c1, fc = layers
    _pick(c0, **choice[0])
    _pick(c1, **choice[1])
    _pick(fc, sparsity=0.5, bits=5)
    for layer in layers:
        layer.hard.assign(1.0)


def test_codes_are_the_grid_and_full_shape_estimate_equals_the_codec_on_random_weights():
    layer = L.SearchableConv2D(64, 3)
    layer.build((None, 8, 8, 32))
    tables = sm.CodecTables([layer]).calibrate()
    layer.hard.assign(1.0)
    for bits, sparsity in [(8, 0.0), (4, 0.5), (2, 0.9), (3, 0.75)]:
        _pick(layer, width=64, bits=bits, sparsity=sparsity)
        codes = sm.layer_codes(layer, bits, sparsity)
        assert codes.shape == (64, 3, 3, 32)
        assert len(np.unique(codes)) <= 2**bits - 1
        assert np.sum(codes == 0) >= int(np.floor(sparsity * codes.size))
        exact = sm.layer_codec_bytes(layer, bits, sparsity)
        assert float(sm.layer_expected_bytes(layer, tables)) == pytest.approx(exact, rel=1e-5)


def test_calibration_on_trained_weights_beats_the_prior_and_a_random_tensor(trained):
    _, layers, _ = trained
    c1 = layers[1]
    trained_table = sm.bytes_per_weight_table(c1)
    random_layer = L.SearchableConv2D(64, 3)
    random_layer.build((None, 8, 8, 32))
    random_table = sm.bytes_per_weight_table(random_layer)
    # The tables differ (why calibrating on the layer's own weights matters) ...
    assert np.abs(trained_table / random_table - 1).max() > 0.01
    # ... more bits always cost more, more sparsity never costs more (at 2 bits the grid
    # alone already rounds most trained weights to 0, so 0-50 % sparsity cost the same).
    assert np.all(np.diff(trained_table, axis=0) > 0)
    assert np.all(np.diff(trained_table, axis=1) <= 1e-7)
    assert np.all(np.diff(trained_table[-1]) < 0)


@pytest.mark.parametrize("choice", CHOICES)
def test_hard_estimate_vs_codec_on_trained_weights(trained, choice):
    _, layers, _ = trained
    for target in (None, TARGET):  # flat stream, Vela's brick order
        tables = sm.CodecTables(layers, target).calibrate()
        _apply(layers, choice)
        exact = sm.network_codec_bytes(layers, target=target)
        estimate = {layer.name: float(sm.layer_expected_bytes(layer, tables)) for layer in layers}
        for name in ("c0", "c1", "fc"):
            assert estimate[name] == pytest.approx(exact[name], rel=0.1, abs=64), (target, name)
        assert sum(estimate.values()) == pytest.approx(exact["total"], rel=0.05), target


def test_soft_estimate_is_the_expectation_over_all_choices_and_reaches_the_previous_width(trained):
    _, layers, _ = trained
    c0, c1, _ = layers
    rng = np.random.default_rng(1)
    for layer in layers:
        layer.hard.assign(0.0)
        for v in layer.architecture_variables():
            v.assign(rng.normal(size=v.shape).astype(np.float32))
    # Brute force over every (c0 width) x (c1 width, kernel size, pattern, sparsity, bits) with the tables.
    p0 = c0.choice_probabilities()["width"].numpy()
    p1 = {k: v.numpy() for k, v in c1.choice_probabilities().items()}
    brute = 0.0
    tables = sm.CodecTables(layers, TARGET).calibrate()  # brick order: the tables differ per traversal
    table, stream = tables.per_weight[c1.name].numpy(), tables.per_stream[c1.name].numpy()
    assert not np.allclose(table[0], table[1])
    for (i, w_in), (j, w_out), (m, k), n, (b, _), (s, _) in itertools.product(
            enumerate(c0.widths), enumerate(c1.widths), enumerate(c1.kernel_sizes), range(len(c1.patterns)),
            enumerate(c1.bits), enumerate(c1.sparsities)):
        t = TARGET.weight_traversal("conv", w_in, k * k)
        p = p0[i] * p1["width"][j] * p1["kernel_size"][m] * p1["pattern"][n] * p1["bits"][b] * p1["sparsity"][s]
        brute += p * (table[t, m, n, b, s] * k * k * w_in * w_out + stream[t, m, n, b, s])
    with tf.GradientTape() as tape:
        estimate = sm.layer_expected_bytes(c1, tables)
    assert float(estimate) == pytest.approx(brute, rel=1e-4)
    grads = tape.gradient(estimate, [c0.width_logits] + c1.architecture_variables())
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads)
    total = sm.network_expected_bytes(layers, tables)
    assert float(total) == pytest.approx(sum(float(sm.layer_expected_bytes(l, tables)) for l in layers), rel=1e-5)


def test_depthwise_size_follows_its_input():
    inputs = keras.Input((6, 6, 3))
    conv = L.SearchableConv2D(16, 1, name="pw")
    dw = L.SearchableDepthwiseConv2D(3, input_from=conv, name="dw")
    keras.Model(inputs, dw(conv(inputs)))
    tables = sm.CodecTables([conv, dw]).calibrate()
    _pick(conv, width=8, sparsity=0.0, bits=8)
    _pick(dw, sparsity=0.0, bits=4)
    conv.hard.assign(1.0)
    dw.hard.assign(1.0)
    assert float(sm.expected_input_width(dw)) == 8.0
    codes = sm.layer_codes(dw, 4, 0.0, input_width=8)
    assert codes.shape == (1, 3, 3, 8)
    exact = sm.network_codec_bytes([conv, dw])
    assert exact["dw"] == sm.codes_bytes(codes)
    assert float(sm.layer_expected_bytes(dw, tables)) == pytest.approx(exact["dw"], rel=0.15, abs=32)


def _export(layers, choices, images):
    """The hard sub-network as a plain grid-QAT tf_keras model -> int8 .tflite (a minimal strip)."""
    import tensorflow_model_optimization as tfmot

    from udc.deploy.convert import convert_to_int8
    from udc.space.quantizers import CUSTOM_OBJECTS, GridQuantizeConfig

    annotate = tfmot.quantization.keras.quantize_annotate_layer
    c0, c1, fc = layers
    k0 = sm.magnitude_prune(c0.kernel.numpy()[..., : choices["c0"]["width"]], choices["c0"]["sparsity"])
    k1 = sm.magnitude_prune(c1.kernel.numpy()[:, :, : choices["c0"]["width"], : choices["c1"]["width"]],
                            choices["c1"]["sparsity"])
    k2 = sm.magnitude_prune(fc.kernel.numpy()[: choices["c1"]["width"]], choices["fc"]["sparsity"])
    inputs = keras.Input((8, 8, 1))
    plain = [keras.layers.Conv2D(k0.shape[-1], 3, padding="same", activation="relu"),
             keras.layers.Conv2D(k1.shape[-1], 3, strides=2, padding="same", activation="relu"),
             keras.layers.Dense(10)]
    x = annotate(plain[0], GridQuantizeConfig(choices["c0"]["bits"], True))(inputs)
    x = annotate(plain[1], GridQuantizeConfig(choices["c1"]["bits"], True))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = annotate(plain[2], GridQuantizeConfig(choices["fc"]["bits"], False))(x)
    model = keras.Model(inputs, x)
    for layer, kernel in zip(plain, (k0, k1, k2)):
        layer.set_weights([kernel, np.zeros(kernel.shape[-1], np.float32)])
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        qat = tfmot.quantization.keras.quantize_apply(model)
    qat(images[:32], training=True)  # sets the grid ranges from the weights
    return convert_to_int8(qat, images[:64])


def test_whole_exported_model_estimate_vs_vela(trained):
    from udc import tflite_file

    _, layers, images = trained
    _apply(layers, ({"width": 32, "sparsity": 0.25, "bits": 8}, {"width": 64, "sparsity": 0.5, "bits": 6}))
    choices = {layer.name: layer.hard_choice() for layer in layers}
    data = _export(layers, choices, images)
    stored = tflite_file.weight_tensors(tflite_file.parse(data))
    # The exporter writes exactly the codes the size model encodes.
    for tensor, layer in zip(stored, layers):
        c = choices[layer.name]
        expected = sm.layer_codes(layer, c["bits"], c["sparsity"], c["width"], sm.input_width_of(layer, choices))
        np.testing.assert_array_equal(tensor.values, expected)
    for target in (get_target("ethos-u55-128"), get_target("ethos-u65-512"), get_target("ethos-u85-256")):
        vela = target.compile(data).encoded_weight_bytes
        pool = sm.global_pool_bytes(4, 4, choices["c1"]["width"], target)  # Vela's MEAN weights
        tables = sm.CodecTables(layers, target).calibrate()
        estimate = float(sm.network_expected_bytes(layers, tables, extra_bytes=pool))
        bricks = sm.network_codec_bytes(layers, target=target)["total"] + pool
        flat = sm.network_codec_bytes(layers, order="flat")["total"]
        print(f"{target.name}: vela {vela} estimate {estimate:.0f} ({estimate / vela - 1:+.2%}) "
              f"bricks {bricks} ({bricks / vela - 1:+.2%}) flat {flat} ({flat / vela - 1:+.2%})")
        assert estimate == pytest.approx(vela, rel=0.03)
        assert bricks == pytest.approx(vela, rel=0.03)
        assert flat == pytest.approx(vela, rel=0.06)
