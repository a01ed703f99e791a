"""A user's own residual model, saved as a `.keras` file, searched end to end (issue 13): udc derives its supernet
(width groups for the Adds, a width choice per branch a Concatenate joins), searches under a byte and a cycle budget on
an Ethos-U65-256, strips, fine-tunes and exports it, and Vela meets both budgets with every operator on the NPU."""

import re

import pytest

from search_helpers import digits_config
from udc import tflite_file
from udc.compat import keras
from udc.data import load_splits
from udc.errors import ConfigError
from udc.search.loop import SupernetSearch
from udc.workflows.pipeline import search_and_export

SHORT = {"steps_per_epoch": 5, "supernet_epochs": 1, "search_epochs": 1, "finetune_epochs": 1, "candidates": 0,
         "bits": (4, 8), "sparsities": (0.0, 0.5)}


def residual_model(path):
    """Written by hand, as a user would: a stem, one residual block with a strided 1x1 shortcut, two branches
    joined by a Concatenate, a classifier."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="block_a")(x)
    y = keras.layers.BatchNormalization(name="block_a_bn")(y)
    y = keras.layers.ReLU(name="block_a_relu")(y)
    y = keras.layers.Conv2D(32, 3, padding="same", use_bias=False, name="block_b")(y)
    y = keras.layers.BatchNormalization(name="block_b_bn")(y)
    shortcut = keras.layers.Conv2D(32, 1, strides=2, name="shortcut")(x)
    x = keras.layers.ReLU(name="block_relu")(keras.layers.Add(name="block_add")([shortcut, y]))
    a = keras.layers.Conv2D(16, 1, activation="relu", name="branch_a")(x)  # two branches joined on channels
    b = keras.layers.Conv2D(24, 3, padding="same", activation="relu", name="branch_b")(x)
    x = keras.layers.Concatenate(name="branches")([a, b])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classes")(x)
    keras.Model(inputs, outputs, name="users_resnet").save(path)
    return str(path)


@pytest.mark.e2e
def test_a_users_residual_keras_model_is_searched_and_exported_within_both_budgets(tmp_path):
    config = digits_config(**SHORT, supernet=str(tmp_path / "supernet"))
    config.backbone = residual_model(tmp_path / "model.keras")
    config.search.max_widths = None  # the file's widths are the largest
    config.accelerator = "ethos-u65-256"
    config.train.epochs = 1
    config.budget_cycles = 1
    with pytest.raises(ConfigError, match="budget_cycles to at least") as info:
        SupernetSearch(config, load_splits(config), tmp_path / "probe", log=lambda _: None).check_feasible()
    config.budget_cycles = budget_cycles = int(int(re.search(r"at least (\d+)", str(info.value)).group(1)) * 1.5)
    config.budget_kb = budget_kb = 8.0

    report = search_and_export(config, tmp_path / "search", log=lambda _: None)
    search = report["search"]
    assert report["vela"]["npu_fraction"] == 1.0
    assert report["vela"]["cycles"] <= budget_cycles and search["within_cycle_budget"]
    assert report["vela"]["encoded_weight_bytes"] <= budget_kb * 1024 and search["within_budget"]
    layers = {layer["name"]: layer for layer in search["arch_spec"]["layers"]}
    assert layers["block_b"]["width"] == layers["shortcut"]["width"], "the Add's two inputs share one width"
    # The classifier after the join reads the live channels of both branches, each at its own width.
    assert layers["classes"]["input_width"] == layers["branch_a"]["width"] + layers["branch_b"]["width"]
    data = (tmp_path / "search" / "model.tflite").read_bytes()
    model = tflite_file.parse(data)
    assert {"ADD", "CONCATENATION"} <= {tflite_file.op_name(model, op) for op in model.subgraphs[0].operators}
    # Learnt something in a few steps (chance: 0.1); how much varies with the CPU's kernels (0.17 to above 0.2
    # measured), so the margin is wide.
    assert report["accuracy"]["int8_tflite"] > 0.13
