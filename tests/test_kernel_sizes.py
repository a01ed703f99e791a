"""Kernel size as a search dimension (ASPS, issue 12): the centre rule against TensorFlow, the searchable layers'
passes, strip, the size and cycle models, warm start, and the bad-input lines."""

import numpy as np
import pytest

from cycle_helpers import assert_expected_cycles_are_exact_at_hard_choices
from udc.compat import keras, tf
from udc.costs import cycle_model as cm
from udc.costs import size_model as sm
from udc.deploy.convert import convert_to_int8
from udc.deploy.strip import largest_child_template, strip
from udc.errors import ConfigError, UdcError
from udc.models import fmnist_cnn
from udc.search import settings
from udc.search.warm_start import load_float_weights
from udc.space import SearchOptions, children, searchable_layers, set_hard
from udc.space import layers as L
from udc.space.dimensions import DIMENSIONS
from udc.space.kernel_sizes import centred, crop_np, crops_exactly
from udc.space.supernet import fmnist_supernet
from udc.targets import get_target

TARGET = get_target("ethos-u55-128")
WIDTHS = (8, 16, 16, 16, 16)
OPTIONS = SearchOptions(kernel_sizes=(1, 3, 5), bits=(4, 8), sparsities=(0.0, 0.5))
# A child of the 8x8 supernet below: every kernel size, on layers whose stride allows it.
CHOICE = {"conv0": {"width": 8, "kernel_size": 1, "pattern": "dense", "sparsity": 0.5, "bits": 4},
          "conv1": {"width": 16, "kernel_size": 5, "pattern": "dense", "sparsity": 0.0, "bits": 8},
          "conv2": {"width": 8, "kernel_size": 3, "pattern": "dense", "sparsity": 0.5, "bits": 8},
          "conv3": {"width": 16, "kernel_size": 3, "pattern": "dense", "sparsity": 0.5, "bits": 4},
          "conv4": {"width": 16, "kernel_size": 1, "pattern": "dense", "sparsity": 0.0, "bits": 4},
          "logits": {"width": 10, "kernel_size": 1, "pattern": "dense", "sparsity": 0.0, "bits": 8}}


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("size", [5, 6, 7, 8])
def test_the_centre_rule_says_what_tensorflow_computes(size, stride, kernel):
    """The centre of a 5x5 kernel (zeros around it) computes the smaller convolution exactly when the rule says."""
    rng = np.random.default_rng(size * 10 + stride)
    x = rng.normal(size=(1, size, size, 2)).astype(np.float32)
    small = rng.normal(size=(kernel, kernel, 2, 3)).astype(np.float32)

    def conv(k):
        return tf.nn.conv2d(x, k, strides=stride, padding="SAME").numpy()

    agree = np.allclose(conv(small), conv(centred(small, 5)), atol=1e-4)
    assert agree == crops_exactly(kernel, 5, (size, size), (stride, stride), "same")
    assert not crops_exactly(kernel, 5, (size, size), (stride, stride), "valid")  # valid padding: other output size


def test_each_convolution_chooses_the_kernel_sizes_its_stride_allows():
    supernet = fmnist_supernet((8, 8, 1), 10, OPTIONS, widths=WIDTHS)
    assert {layer.name: layer.kernel_sizes for layer in searchable_layers(supernet)} == {
        "conv0": (1, 3, 5), "conv1": (3, 5), "conv2": (1, 3, 5), "conv3": (3, 5), "conv4": (1, 3, 5), "logits": (1,)}
    assert all(tuple(layer.kernel.shape[:2]) == (5, 5) for layer in searchable_layers(supernet)[:-1])
    # A layer with one kernel size holds no kernel-size variables: supernets and checkpoints from before restore.
    plain = fmnist_supernet((8, 8, 1), 10, SearchOptions(), widths=WIDTHS)
    assert not any("kernel_size" in v.name for v in plain.weights)


@pytest.fixture(scope="module")
def supernet(digits_splits):
    """The 8x8 supernet with kernel sizes (1, 3, 5), its BatchNorm statistics from a few training passes."""
    keras.utils.set_random_seed(0)
    model = fmnist_supernet(digits_splits.input_shape, 10, OPTIONS, widths=WIDTHS)
    layers = searchable_layers(model)
    for batch in range(4):
        children.use_sampled(layers)
        model(digits_splits.train.x[batch * 64:(batch + 1) * 64], training=True)
    children.release(layers)
    return model


def test_a_kernel_size_choice_strips_to_the_centre_of_the_kernel(supernet, digits_splits):
    layers = searchable_layers(supernet)
    x = digits_splits.test.x[:64]
    children.use_choices(layers, CHOICE)
    child = supernet(x, training=False).numpy()
    children.release(layers)
    children.set_choices(supernet, CHOICE)
    set_hard(supernet, True)
    hard = supernet(x, training=False).numpy()
    set_hard(supernet, False)
    assert children.choices_of(supernet) == CHOICE
    plain, masks = strip(supernet, CHOICE)
    convs = {layer.name: layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)}
    for name, layer in convs.items():
        k = CHOICE[name]["kernel_size"]
        assert layer.kernel_size == (k, k) and layer.kernel.shape[:2] == (k, k) and masks[name].shape[:2] == (k, k)
        # The centre of the supernet's kernel: its zeros (the sparsity rate's, over the centre) are the mask's.
        centre = crop_np(supernet.get_layer(name).kernel.numpy(), k)
        kept = centre[:, :, :masks[name].shape[2], :masks[name].shape[3]][masks[name] == 1]
        assert np.all(np.abs(kept) > 0)
    np.testing.assert_allclose(child, hard, atol=1e-6)
    np.testing.assert_allclose(plain(x).numpy(), hard, rtol=1e-4, atol=1e-5 * np.abs(hard).max())


def test_the_relaxed_pass_of_a_certain_choice_is_the_exact_one_and_the_logits_learn(supernet, digits_splits):
    """Full widths, sparsity 0 and 8 bits (the relaxed pass prunes and scales its grid over the full kernel): the
    relaxed and exact passes then differ only in how they cut the kernel size."""
    layers = searchable_layers(supernet)
    choice = {layer.name: {**CHOICE[layer.name], "width": layer.widths[-1], "sparsity": 0.0, "bits": 8}
              for layer in layers}
    saved = [v.numpy() for v in supernet.weights]
    children.set_choices(supernet, choice)
    for layer in layers:  # certain: every other option at probability e^-40
        for dim in DIMENSIONS:
            if dim.searchable(layer):
                dim.logits(layer).assign([20.0 if o == choice[layer.name][dim.name] else -20.0
                                          for o in dim.options(layer)])
    x = digits_splits.test.x[:32]
    soft = supernet(x, training=False).numpy()
    set_hard(supernet, True)
    hard = supernet(x, training=False).numpy()
    set_hard(supernet, False)
    np.testing.assert_allclose(soft, hard, rtol=1e-4, atol=1e-4 * np.abs(hard).max())
    for layer in layers:
        if len(layer.kernel_sizes) > 1:
            layer.kernel_size_logits.assign(np.zeros(len(layer.kernel_sizes), np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(supernet(x, training=True) ** 2)
    grads = tape.gradient(loss, [layer.kernel_size_logits for layer in layers if len(layer.kernel_sizes) > 1])
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads)
    for v, value in zip(supernet.weights, saved):
        v.assign(value)


def test_the_size_model_and_the_export_agree_on_a_child_of_mixed_kernels(supernet, digits_splits):
    layers = searchable_layers(supernet)
    tables = sm.CodecTables(layers, TARGET).calibrate()
    assert tables.per_weight["conv0"].shape[1] == 3  # [traversal, kernel size, pattern, bits, sparsity]
    codec = sm.network_codec_bytes(layers, CHOICE, TARGET)
    plain, _ = strip(supernet, CHOICE)
    data = convert_to_int8(plain, digits_splits.train.x[:64])
    assert sm.exported_bytes(data, TARGET)["layers"] == [codec[layer.name] for layer in layers]
    larger = {name: {**c, "kernel_size": 5} if name.startswith("conv") else c for name, c in CHOICE.items()}
    assert sm.network_codec_bytes(layers, larger, TARGET)["total"] > codec["total"]
    children.set_choices(supernet, CHOICE)
    set_hard(supernet, True)
    estimate = {layer.name: float(sm.layer_expected_bytes(layer, tables)) for layer in layers}
    set_hard(supernet, False)
    for layer in layers:
        assert estimate[layer.name] == pytest.approx(codec[layer.name], rel=0.15, abs=64), layer.name


def test_the_cycle_tables_hold_every_kernel_size_and_estimate_vela(supernet, digits_splits):
    layers = searchable_layers(supernet)
    images = digits_splits.train.x[:32]
    tables = cm.measure(supernet, TARGET, largest_child_template(supernet, images), log=lambda _: None)
    assert {name: set(t.cells) for name, t in tables.layers.items()} == {
        layer.name: {cell + ("dense", k) for cell in cells for k in layer.kernel_sizes}
        for layer, cells in zip(layers, cm.layer_cells(layers).values())}
    plain, _ = strip(supernet, CHOICE)
    data = convert_to_int8(plain, images)
    weight_bytes = dict(zip([layer.name for layer in layers], sm.exported_bytes(data, TARGET)["layers"]))
    assert tables.network_cycles(layers, CHOICE, weight_bytes) == pytest.approx(TARGET.compile(data).cycles, rel=0.1)
    assert_expected_cycles_are_exact_at_hard_choices(
        tables, layers, sm.CodecTables(layers, TARGET).calibrate(),
        lambda layers: [layer.kernel_size_logits for layer in layers if len(layer.kernel_sizes) > 1])


def test_a_3x3_float_model_warm_starts_the_centre_of_a_5x5_supernet(digits_splits):
    keras.utils.set_random_seed(0)
    float_model = fmnist_cnn(digits_splits.input_shape, 10, widths=WIDTHS)
    supernet = fmnist_supernet(digits_splits.input_shape, 10, SearchOptions(kernel_sizes=(3, 5)), widths=WIDTHS)
    load_float_weights(supernet, float_model)
    layers = searchable_layers(supernet)
    x = digits_splits.test.x[:64]
    expected = float_model(x, training=False).numpy()
    for use in (children.use_largest, lambda ls: children.use_choices(ls, {
            layer.name: {"kernel_size": 3, "width": layer.widths[-1], "sparsity": 0.0, "bits": 8} for layer in ls})):
        use(layers)
        child = supernet(x, training=False).numpy()
        children.release(layers)
        np.testing.assert_allclose(child, expected, atol=0.02 * np.abs(expected).max())  # up to the 8-bit grid
    border = supernet.get_layer("conv2").kernel.numpy().copy()
    border[1:4, 1:4] = 0
    assert not border.any()
    too_small = fmnist_supernet(digits_splits.input_shape, 10, SearchOptions(kernel_sizes=(1,)), widths=WIDTHS)
    with pytest.raises(UdcError, match=r"layer conv0: the float model's 3x3 kernel does not fit in the centre of "
                                       r"the supernet's 1x1; make the largest of search.kernel_sizes at least"):
        load_float_weights(too_small, float_model)


def test_kernel_sizes_a_layer_or_backbone_cannot_take_are_refused_in_one_line(monkeypatch, digits_splits):
    with pytest.raises(ConfigError, match=r"kernel size 4 is not valid; --config.search.kernel_sizes must be odd"):
        SearchOptions(kernel_sizes=(3, 4))
    with pytest.raises(ConfigError, match=r"the kernel size list \[5, 3\] is not strictly increasing"):
        SearchOptions(kernel_sizes=(5, 3))
    layer = L.SearchableConv2D(8, 3, strides=2, kernel_sizes=(1, 3), name="c")
    with pytest.raises(ConfigError, match=r"layer c cannot choose a 1x1 kernel: at stride 2 with same padding on "
                                          r"its 8x8 input the centre of its 3x3 kernel reads other pixels"):
        layer.build((None, 8, 8, 2))
    with pytest.raises(ConfigError, match=r"layer d holds a 3x3 kernel but chooses kernel sizes \[3, 5\]; "
                                          r"give it kernel_size=5"):
        L.SearchableConv2D(8, 3, kernel_sizes=(3, 5), name="d")
    from search_helpers import digits_config

    config = digits_config(kernel_sizes=(1, 3))
    settings.check_supported(config, TARGET, digits_splits)  # conv0, conv2 and conv4 (stride 1) take a 1x1
    inputs = keras.Input(digits_splits.input_shape)
    strided = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv0")(inputs)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(strided))
    monkeypatch.setattr(settings, "build_backbone", lambda *args: keras.Model(inputs, outputs))
    with pytest.raises(ConfigError, match=r"no convolution of fmnist_cnn can take a 1x1 kernel as the centre of a "
                                          r"3x3 one .*; drop 1 from --config.search.kernel_sizes"):
        settings.check_supported(config, TARGET, digits_splits)


def test_a_non_square_kernel_without_a_kernel_size_choice_keeps_its_shape(digits_splits):
    """A (3, 1) convolution holds one kernel size: strip, the prune counts and the size model keep its shape."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(digits_splits.input_shape)
    conv = L.SearchableConv2D(8, (3, 1), widths=[8], sparsities=(0.0, 0.5), bits=(4, 8), batch_norm=True,
                              activation="relu", name="conv0")
    logits = L.SearchableDense(10, widths=[10], sparsities=(0.0,), bits=(8,), input_from=conv, name="logits")
    model = keras.Model(inputs, logits(keras.layers.GlobalAveragePooling2D(name="pool")(conv(inputs))))
    choice = {"conv0": {"width": 8, "kernel_size": 3, "pattern": "dense", "sparsity": 0.5, "bits": 4},
              "logits": {"width": 10, "kernel_size": 1, "pattern": "dense", "sparsity": 0.0, "bits": 8}}
    x = digits_splits.test.x[:32]
    children.use_choices(searchable_layers(model), choice)
    hard = model(x, training=False).numpy()
    children.release(searchable_layers(model))
    plain, masks = strip(model, choice)
    assert plain.get_layer("conv0").kernel_size == (3, 1) and masks["conv0"].shape == (3, 1, 1, 8)
    assert masks["conv0"].mean() == 0.5  # half of its 24 weights, as the exact pass prunes
    np.testing.assert_allclose(plain(x).numpy(), hard, rtol=1e-4, atol=1e-5 * np.abs(hard).max())
    data = convert_to_int8(plain, digits_splits.train.x[:32])
    assert sm.exported_bytes(data, TARGET)["layers"] == [
        sm.network_codec_bytes(searchable_layers(model), choice, TARGET)[name] for name in ("conv0", "logits")]
