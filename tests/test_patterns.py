"""N:M weight patterns as a search dimension (issue 12): masks, the layers' exact pass, strip and export,
the cycle tables per pattern on the Ethos-U85, and the bad-input lines."""

import numpy as np
import pytest

from cycle_helpers import assert_expected_cycles_are_exact_at_hard_choices
from udc import tflite_file
from udc.arch import ArchSpec, ArchSpecError
from udc.compat import keras, tf
from udc.costs import cycle_model as cm
from udc.costs import size_model as sm
from udc.deploy.convert import convert_to_int8
from udc.deploy.strip import largest_child_template, strip
from udc.errors import ConfigError
from udc.space import SearchOptions
from udc.space import layers as L
from udc.space.children import set_choices
from udc.space.options import pattern_options
from udc.space.patterns import pattern_mask, pattern_mask_np
from udc.space.supernet import fmnist_supernet
from udc.targets import ethos_u, get_target

U85 = get_target("ethos-u85-256")


def _groups(mask, axis):
    """Nonzeros per group of 4 along `axis`, the last group padded with zeros."""
    moved = np.moveaxis(mask, axis, -1)
    moved = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, -moved.shape[-1] % 4)])
    return moved.reshape(-1, 4).sum(axis=1)


@pytest.mark.parametrize("shape, axis", [((3, 3, 10, 6), -2), ((13, 5), 0), ((3, 3, 2, 4), -2)])
def test_a_2_4_mask_keeps_the_two_largest_of_every_four_input_channel_weights(shape, axis):
    w = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    mask = pattern_mask_np(w, "2:4", axis)
    assert np.array_equal(mask, pattern_mask(tf.constant(w), "2:4", axis).numpy())
    # Two kept in every group (fewer in a last group of fewer channels: the rest is padding).
    assert np.array_equal(_groups(mask, axis), np.minimum(_groups(np.ones_like(mask), axis), 2))
    kept, dropped = np.abs(w)[mask == 1], np.abs(w)[mask == 0]
    if shape[axis] >= 4:  # in a group of 4, every kept weight outweighs every dropped one
        moved, moved_mask = np.moveaxis(np.abs(w), axis, -1), np.moveaxis(mask, axis, -1)
        first = moved[..., :4].reshape(-1, 4), moved_mask[..., :4].reshape(-1, 4)
        assert all(g[m == 1].min() > g[m == 0].max() for g, m in zip(*first))
    assert kept.size + dropped.size == w.size
    # Ties go to the lower channel, the same in numpy and TensorFlow; with a dynamic input depth too.
    ones = np.ones((3, 3, 8, 2), np.float32)
    assert pattern_mask_np(ones, "2:4")[0, 0, :, 0].tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    dynamic = tf.function(lambda x: pattern_mask(x, "2:4", -2),
                          input_signature=[tf.TensorSpec([3, 3, None, 2], tf.float32)])
    assert np.array_equal(dynamic(ones).numpy(), pattern_mask_np(ones, "2:4"))


def test_bad_patterns_are_refused_in_one_line():
    for bad, match in ((("dense", "4:2"), "'4:2' is not valid"), (("2:4",), "must start with 'dense'"),
                       (("dense", "x"), "'x' is not valid"), (("dense", "2:4", "2:4"), "hold each pattern once")):
        with pytest.raises(ConfigError, match=match) as info:
            pattern_options(bad)
        assert "\n" not in str(info.value) and "--config.search.patterns" in str(info.value)
    with pytest.raises(ConfigError, match="depthwise layer dw cannot take the weight patterns"):
        L.SearchableDepthwiseConv2D(3, patterns=("dense", "2:4"), name="dw")


def test_the_targets_say_where_2_4_runs():
    u55 = get_target("ethos-u55-128")
    assert U85.unsupported("conv", "pattern", "2:4") is None and U85.unsupported("dense", "pattern", "2:4") is None
    assert "depthwise" in U85.unsupported("depthwise", "pattern", "2:4")
    assert "2:4" in U85.unsupported("conv", "pattern", "1:4")
    assert "only the Ethos-U85" in u55.unsupported("conv", "pattern", "2:4")
    assert u55.unsupported("conv", "pattern", "dense") is None
    options = SearchOptions.for_target(U85, patterns=("dense", "2:4"))
    assert options.patterns_for("conv") == ("dense", "2:4") and options.patterns_for("depthwise") == ("dense",)
    assert SearchOptions.for_target(u55, patterns=("dense", "2:4")).patterns_for("conv") == ("dense",)


def test_2_4_on_a_target_without_it_is_refused_before_training(digits_splits):
    from search_helpers import digits_config
    from udc.search.settings import check_supported

    config = digits_config(patterns=("dense", "2:4"))
    with pytest.raises(ConfigError, match=r"ethos-u55-128 cannot run the weight pattern 2:4 on any layer of "
                                          r"fmnist_cnn: only the Ethos-U85") as info:
        check_supported(config, get_target("ethos-u55-128"), digits_splits)
    assert "\n" not in str(info.value) and "--config.search.patterns" in str(info.value)
    check_supported(config, U85, digits_splits)  # the U85 runs it


def test_an_arch_spec_with_a_2_4_depthwise_layer_is_refused():
    layer = {"name": "dw", "kind": "depthwise", "width": 16, "input_width": 16, "sparsity": 0.0, "bits": 8,
             "estimated_bytes": 100.0, "codec_bytes": 100, "pattern": "2:4"}
    spec = {"layers": [layer], "target": "ethos-u85-256", "extra_bytes": 0, "estimated_bytes": 100.0,
            "codec_bytes": 100, "version": 2}
    with pytest.raises(ArchSpecError, match="dw is depthwise and cannot take the pattern 2:4") as info:
        ArchSpec.from_json(spec)
    assert "\n" not in str(info.value)
    version_1 = {**spec, "version": 1, "layers": [{k: v for k, v in layer.items() if k != "pattern"}]}
    assert ArchSpec.from_json(version_1).choices()["dw"]["pattern"] == "dense"  # before patterns: dense


@pytest.fixture(scope="module")
def small85():
    """A small supernet for Ethos-U85-256 whose layers choose dense or 2:4, a random 8x8 batch, its cycle tables."""
    keras.utils.set_random_seed(0)
    options = SearchOptions.for_target(U85, patterns=("dense", "2:4"), widths=(8, 16))
    supernet = fmnist_supernet((8, 8, 1), 10, options, widths=(16, 16, 16, 16, 16))
    images = np.random.default_rng(0).random((32, 8, 8, 1)).astype(np.float32)
    tables = cm.measure(supernet, U85, largest_child_template(supernet, images), log=lambda _: None)
    return supernet, images, tables


def _choices(layers, pattern, rng):
    return {layer.name: {"width": int(rng.choice(layer.widths)), "pattern": pattern,
                         "sparsity": float(rng.choice(layer.sparsities[:3])), "bits": int(rng.choice(layer.bits))}
            for layer in layers}


def test_a_2_4_child_strips_to_the_hard_supernet_keeps_the_pattern_through_qat_and_runs_sparse(small85, digits_splits):
    from udc.deploy.finetune import finetune

    supernet, images, _ = small85
    layers = L.searchable_layers(supernet)
    choices = _choices(layers, "2:4", np.random.default_rng(3))
    set_choices(supernet, choices)
    L.set_hard(supernet, True)
    try:
        hard = supernet(images, training=False).numpy()
    finally:
        L.set_hard(supernet, False)
    plain, masks = strip(supernet, choices)
    np.testing.assert_allclose(plain(images, training=False).numpy(), hard, rtol=1e-4, atol=1e-4)
    for layer in layers:  # the masks the fine-tune keeps hold the pattern
        assert _groups(masks[layer.name], -2).max() <= 2, layer.name
    # The fine-tune (QAT at each layer's bits, the masks kept) and the int8 export keep the pattern.
    qat = finetune(plain, {name: c["bits"] for name, c in choices.items()}, masks, digits_splits, epochs=1,
                   learning_rate=1e-3, batch_size=64, steps_per_epoch=4, log=lambda _: None)
    data = convert_to_int8(qat, digits_splits.train.x[:64])
    tensors = [w for w in tflite_file.weight_tensors(tflite_file.parse(data)) if w.op in tflite_file.OP_KINDS]
    assert all(not ethos_u.two_four_problems(w.values, tflite_file.OP_KINDS[w.op]) for w in tensors)
    formats = U85.weight_formats(data)
    assert all("Sparse2_4" in formats[w.op_index] for w in tensors)
    for layer in layers:  # the codes the size model measures hold the pattern too
        c = choices[layer.name]
        codes = sm.layer_codes(layer, c["bits"], c["sparsity"], c["width"], sm.input_width_of(layer, choices), "2:4")
        assert not ethos_u.two_four_problems(codes, sm.layer_kind(layer)), layer.name


def test_the_cycle_tables_hold_a_cheaper_2_4_table_and_estimate_vela(small85):
    supernet, images, tables = small85
    layers = L.searchable_layers(supernet)
    for layer in layers[1:]:  # 16 input channels: the 2:4 weights run faster at every byte level
        cell = (16, 16 if layer.name != "logits" else 10)
        kernel_size = layer.kernel_sizes[-1]
        dense, sparse = (tables.layers[layer.name].cells[cell + (pattern, kernel_size)] for pattern in ("dense", "2:4"))
        assert sparse[-1][1] < dense[-1][1] and sparse[0][1] <= dense[0][1], layer.name
    assert cm.CycleTables.from_json(tables.to_json()) == tables
    rng = np.random.default_rng(1)
    for pattern in ("dense", "2:4"):
        choices = _choices(layers, pattern, rng)
        data = convert_to_int8(strip(supernet, choices)[0], images)
        weight_bytes = dict(zip([l.name for l in layers], sm.exported_bytes(data, U85)["layers"]))
        # A few hundred cycles per layer on 8x8 images: the tables err by at most a tenth here.
        assert tables.network_cycles(layers, choices, weight_bytes) == pytest.approx(U85.compile(data).cycles,
                                                                                    rel=0.1), pattern


def test_expected_cycles_and_bytes_follow_the_pattern_probabilities(small85):
    supernet, _, tables = small85
    layers = L.searchable_layers(supernet)
    codec = sm.CodecTables(layers, U85).calibrate()
    assert_expected_cycles_are_exact_at_hard_choices(
        tables, layers, codec, lambda layers: [layer.pattern_logits for layer in layers],
        extra=lambda: sm.network_expected_bytes(layers, codec))
