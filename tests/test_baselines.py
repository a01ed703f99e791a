"""Each tfmot recipe on tiny data: the exported .tflite holds what the recipe claims."""

import dataclasses

import numpy as np
import pytest

from udc import tflite_file
from udc.compat import keras
from udc.deploy.convert import convert_to_int8
from udc.errors import ConfigError, UdcError
from udc.models import fmnist_cnn
from udc.targets import ethos_u, get_target
from udc.training.backbone import compile_for_training
from udc.deploy.filter_pruning import prune_filters, pruned_widths
from udc.workflows.baselines import RECIPES, TARGET_RECIPES, FineTuning, run_recipe

TUNING = FineTuning(epochs=2, batch_size=64, learning_rate=1e-4)


@pytest.fixture(scope="module")
def narrow_digits_model(digits_splits):
    """fmnist_cnn at a quarter of its widths: tfmot's clustering and pruning wrappers cost per
    weight, and nine recipes on the full widths took most of the suite's time."""
    keras.utils.set_random_seed(0)
    model = compile_for_training(fmnist_cnn(digits_splits.input_shape, 10, widths=(8, 16, 16, 32, 32)), 2e-3)
    model.fit(digits_splits.train.tf_dataset(32, shuffle=True), epochs=4, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(narrow_digits_model, digits_splits):
    """recipe -> (.tflite bytes, conv weight tensors)."""
    # Two steps of 64 an epoch: most of a recipe's time is tracing its models, not their steps, and the pruning
    # schedules end at their final sparsity on the second step. No validation split: the uniform recipes' fine-tune
    # would only log its accuracy, at one more traced model each.
    small = dataclasses.replace(digits_splits, train=digits_splits.train.take(128), val=digits_splits.val.take(0))
    results = {}
    # Of the filter recipes, one fraction: the others differ only in the fraction.
    for name in [r for r in RECIPES if r not in TARGET_RECIPES or r.startswith("filters_45_")]:
        model = run_recipe(name, narrow_digits_model, small, TUNING, get_target("ethos-u55-128"))
        data = convert_to_int8(model, digits_splits.train.x[:64])
        convs = [w for w in tflite_file.weight_tensors(tflite_file.parse(data)) if w.op == "CONV_2D"]
        results[name] = (data, convs)
    return results


def _zero_fraction(convs):
    return sum(int((w.values == 0).sum()) for w in convs) / sum(w.values.size for w in convs)


def _max_codes_per_channel(convs):
    return max(len(np.unique(channel)) for w in convs for channel in w.values)


@pytest.mark.parametrize("recipe, sparsity", [("pqat_50", 0.5), ("pqat_75", 0.75), ("pqat_90", 0.9),
                                              ("pcqat_75_16", 0.75), ("uniform4_sp75", 0.75)])
def test_pruning_recipes_keep_their_sparsity(exported, recipe, sparsity):
    assert _zero_fraction(exported[recipe][1]) >= sparsity - 0.01


@pytest.mark.parametrize("recipe", ["cqat_16", "pcqat_75_16"])
def test_clustering_recipes_keep_16_values_per_channel(exported, recipe):
    assert _max_codes_per_channel(exported[recipe][1]) <= 16
    assert _max_codes_per_channel(exported["qat_int8"][1]) > 16  # the check can tell them apart


@pytest.mark.parametrize("recipe", ["uniform4", "uniform4_sp75"])
def test_uniform_grid_recipes_store_at_most_15_codes_per_tensor(exported, recipe):
    data = exported[recipe][0]
    tensors = [w for w in tflite_file.weight_tensors(tflite_file.parse(data)) if w.op in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(tensors) == 6  # five convolutions and the classifier
    assert all(w.values.dtype == np.int8 for w in tensors)  # INT4 tensors would crash Vela (docs/stack_facts.md)
    assert max(len(np.unique(w.values)) for w in tensors) <= 2 ** 4 - 1
    assert _max_codes_per_channel(exported["qat_int8"][1]) > 15  # the check can tell them apart


def test_int8_recipes_are_dense(exported):
    for recipe in ("ptq_int8", "qat_int8"):
        assert _zero_fraction(exported[recipe][1]) < 0.05


def test_sizes_come_from_vela(exported):
    target = get_target("ethos-u55-128")
    sizes = {name: target.compile(data, name) for name, (data, _) in exported.items()}
    assert all(result.npu_fraction == 1.0 for result in sizes.values())
    assert sizes["pqat_90"].encoded_weight_bytes < 0.5 * sizes["ptq_int8"].encoded_weight_bytes
    assert sizes["pqat_50"].encoded_weight_bytes < sizes["ptq_int8"].encoded_weight_bytes
    assert sizes["uniform4"].encoded_weight_bytes < 0.6 * sizes["ptq_int8"].encoded_weight_bytes
    assert sizes["uniform4_sp75"].encoded_weight_bytes < sizes["uniform4"].encoded_weight_bytes


def test_the_2_4_recipe_keeps_the_pattern_through_qat_and_export(exported):
    """Every layer of pqat_2_4's .tflite meets the 2:4 rules (>= 2 zeros in each group of 4 input-channel
    weights) and the Ethos-U85 runs its convolutions in its sparse format; of qat_int8's only the first
    convolution does, whose one input channel is padded with zeros."""
    def weights(recipe):
        data = exported[recipe][0]
        return data, [w for w in tflite_file.weight_tensors(tflite_file.parse(data)) if w.op in tflite_file.OP_KINDS]

    data, tensors = weights("pqat_2_4")
    meets = [not ethos_u.two_four_problems(w.values, tflite_file.OP_KINDS[w.op]) for w in tensors]
    assert meets == [True] * 6
    formats = get_target("ethos-u85-256").weight_formats(data)
    assert all("Sparse2_4" in formats[w.op_index] for w in tensors[:5])
    _, dense = weights("qat_int8")
    assert [not ethos_u.two_four_problems(w.values, tflite_file.OP_KINDS[w.op]) for w in dense] == [True] + [False] * 5


def _conv_output_channels(data):
    return [w.values.shape[0] for w in tflite_file.weight_tensors(tflite_file.parse(data)) if w.op == "CONV_2D"]


def test_filter_pruning_recipes_keep_their_widths_through_export(exported):
    """Aligned pruning leaves multiples of the target's alignment in the .tflite; the plain fraction
    does not (fmnist_cnn at (8, 16, 16, 32, 32), 45 %: 4, 7, 7, 14, 14 against 8, 8, 8, 16, 16)."""
    assert _conv_output_channels(exported["filters_45_aligned"][0]) == [8, 8, 8, 16, 16]
    assert _conv_output_channels(exported["filters_45_unaligned"][0]) == [4, 7, 7, 14, 14]
    assert get_target("ethos-u55-128").compile(exported["filters_45_unaligned"][0]).npu_fraction == 1.0


def test_filter_pruning_keeps_the_filters_of_largest_l1_norm(narrow_digits_model, digits_splits):
    model = narrow_digits_model
    widths = pruned_widths(model, 0.5)
    assert widths == {"conv0": 4, "conv1": 8, "conv2": 8, "conv3": 16, "conv4": 16}
    pruned = prune_filters(model, widths)
    kernel0, kernel1 = model.get_layer("conv0").get_weights()[0], model.get_layer("conv1").get_weights()[0]
    kept0 = np.sort(np.argsort(-np.abs(kernel0).sum(axis=(0, 1, 2)))[:4])
    np.testing.assert_array_equal(pruned.get_layer("conv0").get_weights()[0], kernel0[..., kept0])
    np.testing.assert_array_equal(pruned.get_layer("bn0").get_weights()[0], model.get_layer("bn0").get_weights()[0][kept0])
    cut1 = kernel1[:, :, kept0, :]
    kept1 = np.sort(np.argsort(-np.abs(cut1).sum(axis=(0, 1, 2)))[:8])
    np.testing.assert_array_equal(pruned.get_layer("conv1").get_weights()[0], cut1[..., kept1])
    assert pruned.get_layer("logits").get_weights()[0].shape == (16, 10)
    # Keeping every filter changes nothing.
    whole = prune_filters(model, pruned_widths(model, 1.0))
    x = digits_splits.val.x[:32]
    np.testing.assert_allclose(whole(x, training=False).numpy(), model(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


def test_aligned_widths_round_to_the_alignment(narrow_digits_model):
    assert pruned_widths(narrow_digits_model, 0.45, alignment=8) == {
        "conv0": 8, "conv1": 8, "conv2": 8, "conv3": 16, "conv4": 16}
    assert pruned_widths(narrow_digits_model, 0.45) == {"conv0": 4, "conv1": 7, "conv2": 7, "conv3": 14, "conv4": 14}


def test_filter_recipes_need_a_target_and_known_layers(narrow_digits_model):
    with pytest.raises(ConfigError, match="filters_30_aligned.*give it a target"):
        run_recipe("filters_30_aligned", narrow_digits_model, None)
    with pytest.raises(UdcError, match="no Conv2D layer named conv9"):
        prune_filters(narrow_digits_model, {"conv9": 4})
    assert set(TARGET_RECIPES) <= set(RECIPES)


def test_unknown_recipe():
    with pytest.raises(ConfigError, match="unknown recipe 'gzip'.*pqat_75"):
        run_recipe("gzip", None, None)
