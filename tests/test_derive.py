"""Supernets derived from plain models (`udc.space.derive`): every backbone's hard supernet strips to a plain model
that computes the same outputs, a user's `.keras` model is searched without udc code for it, and a model udc cannot
search gets one line naming the layer."""

import numpy as np
import pytest

from supernet_helpers import joined_branches
from udc.compat import keras
from udc.costs import size_model as sm
from udc.deploy.strip import strip
from udc.errors import ConfigError
from udc.models import build_backbone
from udc.search.selection import format_choices
from udc.space import SearchOptions, architecture_variables, searchable_layers, set_hard
from udc.space.children import set_choices, with_shared_widths
from udc.space.derive import derive_supernet
from udc.space.dimensions import WIDTH
from udc.space.supernet import build_supernet

SMALL = {  # backbone: (input shape, classes, largest widths, kernel sizes), small enough for a unit test
    "ds_cnn": ((49, 10, 1), 12, (32, 32, 32, 32, 32), (1, 3)),
    "mobilenet_v1": ((32, 32, 3), 2, None, (1, 3)),
    "fmnist_cnn": ((8, 8, 1), 10, (16, 16, 32, 32, 32), (1, 3)),
    "resnet8": ((12, 12, 3), 10, (16, 16, 32), (1, 3)),
}


def random_choices(layers, rng):
    """A random child, every dimension drawn from each layer's own options."""
    return {layer.name: {"width": int(rng.choice(layer.widths)), "kernel_size": int(rng.choice(layer.kernel_sizes)),
                         "pattern": str(rng.choice(layer.patterns)), "sparsity": float(rng.choice(layer.sparsities)),
                         "bits": int(rng.choice(layer.bits))} for layer in layers}


def with_batch_norm_statistics(supernet, rng):
    """Moving statistics far from the initial ones, so that a fold that ignored them would show."""
    for layer in searchable_layers(supernet):
        if layer.bn is not None:
            layer.bn.moving_mean.assign(rng.normal(size=layer.bn.moving_mean.shape).astype(np.float32) * 0.1)
            layer.bn.moving_variance.assign(rng.random(layer.bn.moving_variance.shape).astype(np.float32) + 0.5)


def assert_strips_to_the_hard_supernet(supernet, shape, seed=0):
    rng = np.random.default_rng(seed)
    with_batch_norm_statistics(supernet, rng)
    set_choices(supernet, random_choices(searchable_layers(supernet), rng))
    set_hard(supernet, True)
    plain, _ = strip(supernet)
    x = rng.random((8,) + shape).astype(np.float32)
    expected = supernet(x, training=False).numpy()
    np.testing.assert_allclose(plain(x).numpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    return plain


@pytest.mark.parametrize("backbone", sorted(SMALL))
def test_each_backbone_strips_to_its_hard_supernet(backbone):
    shape, classes, widths, kernel_sizes = SMALL[backbone]
    keras.utils.set_random_seed(0)
    supernet = build_supernet(backbone, shape, classes, SearchOptions(alignment=8, kernel_sizes=kernel_sizes), widths)
    plain = assert_strips_to_the_hard_supernet(supernet, shape)
    assert plain.output_shape == (None, classes)
    assert not [l for l in plain.layers if isinstance(l, keras.layers.BatchNormalization)]


def test_ds_cnn_keeps_its_10x4_kernel_and_its_classifier_keeps_the_classes():
    supernet = build_supernet("ds_cnn", (49, 10, 1), 12, SearchOptions(alignment=16, kernel_sizes=(1, 3)))
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    assert layers["conv0"].kernel_size == (10, 4) and layers["conv0"].kernel_sizes == (10,)
    assert layers["pw1"].kernel_sizes == (1, 3) and layers["dw1"].kernel_sizes == (1, 3)
    assert layers["pw1"].widths == (16, 32, 48, 64) and layers["logits"].widths == (12,)
    assert layers["pw1"].input_from is layers["dw1"] and layers["dw1"].input_from is layers["conv0"]
    # BatchNorm and ReLU moved inside: the derived supernet has the weight layers, the dropout, the pool.
    assert [type(l).__name__ for l in supernet.layers[1:3]] == ["SearchableConv2D", "SearchableDepthwiseConv2D"]
    assert [l.name for l in supernet.layers[-3:]] == ["dropout", "pool", "logits"]
    # The search's log lines say what the layers run: the held 10x4 stem, a depthwise layer at its input's width.
    choices = {name: layer.hard_choice() for name, layer in layers.items()}
    choices["conv0"]["width"] = 16
    shown = dict(zip(*[iter(format_choices(choices, layers.values()).split())] * 2))
    assert shown["conv0"].startswith("16/10x4/") and shown["dw1"].startswith("16/")


def test_a_users_keras_file_is_searched_without_udc_code_for_it(tmp_path):
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(24, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_act")(x)
    x = keras.layers.MaxPooling2D(name="down")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="body")(x)  # valid padding, ReLU inside, a bias
    x = keras.layers.Flatten(name="flat")(x)  # a 4x4 map: the layer before keeps its width
    x = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="classes")(x)
    path = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(path)

    supernet = build_supernet(str(path), (12, 12, 3), 5, SearchOptions(alignment=8))
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    assert list(layers) == ["stem", "body", "hidden", "classes"]
    assert layers["stem"].widths == (8, 16, 24) and layers["stem"].batch_norm
    assert layers["body"].widths == (16,), "flattened from a 4x4 map: the Dense reads every channel at every pixel"
    assert layers["hidden"].widths == (8, 16, 24, 32) and layers["hidden"].input_from is None
    assert layers["classes"].widths == (5,) and layers["classes"].activation is keras.activations.get(None)
    assert_strips_to_the_hard_supernet(supernet, (12, 12, 3))


def _model(*layers, shape=(8, 8, 4)):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("layers, message", [
    ((keras.layers.Conv2D(8, 3, groups=2, name="grouped"),),
     "layer grouped is a grouped convolution .2 groups.; udc searches Conv2D with groups=1"),
    ((keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),),
     "depthwise layer dw has depth multiplier 2; .* follow it with a 1x1 Conv2D instead"),
    ((keras.layers.Conv2D(8, 3, activation="tanh", name="squash"),),
     "layer squash has activation 'tanh'; udc searches weight layers with none or ReLU"),
    ((keras.layers.Conv2D(8, 3, name="c"), keras.layers.LayerNormalization(name="norm")),
     r"layer norm \(LayerNormalization\) is not one udc can search or carry"),
])
def test_a_model_udc_cannot_search_gets_one_line_naming_the_layer(layers, message):
    with pytest.raises(ConfigError, match=message) as error:
        derive_supernet(_model(*layers), SearchOptions())
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("problem, message", [
    ("missing", "backbone model file .*missing.keras does not exist"),
    ("garbage", "is not a tf_keras model file udc can load"),
    ("shape", r"takes inputs of shape \(8, 8, 4\) but the dataset's are \(12, 12, 3\)"),
])
def test_a_bad_model_file_gets_one_line(tmp_path, problem, message):
    path = tmp_path / f"{problem}.keras"
    if problem == "garbage":
        path.write_bytes(b"not a zip")
    elif problem == "shape":
        _model(keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)).save(path)
    with pytest.raises(ConfigError, match=message) as error:
        build_backbone(str(path), (12, 12, 3), 5)
    assert "\n" not in str(error.value)


def test_layers_a_residual_add_joins_share_one_width_choice():
    supernet = build_supernet("resnet8", (12, 12, 3), 10, SearchOptions(alignment=8), (16, 16, 32))
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    groups = {name: getattr(layer.width_from, "name", None) for name, layer in layers.items()}
    assert groups == {"conv0": None, "stack1_a": None, "stack1_b": "conv0", "stack2_a": None, "stack2_b": None,
                      "stack2_shortcut": "stack2_b", "stack3_a": None, "stack3_b": None,
                      "stack3_shortcut": "stack3_b", "logits": None}
    follower, leader = layers["stack2_shortcut"], layers["stack2_b"]
    assert follower.width_logits is leader.width_logits and follower.width_index is leader.width_index
    assert follower.widths == leader.widths == (8, 16)
    owned = [id(v) for v in architecture_variables(supernet)]
    assert len(owned) == len(set(owned)), "each group's width logits are trained once"
    assert not WIDTH.searchable(follower) and WIDTH.searchable(leader)
    # The stack's first convolution reads the group's width; a choice dict that moved one member is made whole.
    assert layers["stack3_a"].input_from.name in ("stack2_b", "stack2_shortcut")
    choices = {name: layer.hard_choice() for name, layer in layers.items()}
    moved = with_shared_widths(list(layers.values()), {**choices, "stack2_b": {**choices["stack2_b"], "width": 8}})
    assert moved["stack2_shortcut"]["width"] == 8


def test_a_group_the_input_joins_keeps_the_inputs_channels():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", name="branch")(inputs)
    x = keras.layers.Add(name="join")([inputs, x])
    x = keras.layers.GlobalAveragePooling2D()(x)
    supernet = derive_supernet(keras.Model(inputs, keras.layers.Dense(3, name="out")(x)), SearchOptions(alignment=2))
    assert supernet.get_layer("branch").widths == (4,)
    assert supernet.get_layer("out").input_from is supernet.get_layer("branch")


def test_an_add_after_a_depthwise_layer_and_a_concatenate_of_rows_get_one_line():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(inputs)
    y = keras.layers.Conv2D(4, 1, name="pw")(inputs)
    for join, message in ((keras.layers.Add(name="join"), "the Add join joins the output of depthwise layer dw"),
                          (keras.layers.Concatenate(axis=1, name="cat"), "the Concatenate cat joins along axis 1")):
        with pytest.raises(ConfigError, match=message):
            derive_supernet(keras.Model(inputs, join([y, x])), SearchOptions())


def test_a_concatenates_unequal_branches_choose_each_their_width_and_strip_to_the_hard_supernet():
    """An inception-like join of an 8-channel 1x1 branch and a 16-channel depthwise-separable one: each branch
    chooses its own width (the depthwise one through the layer that sets its channels), and the layer after the
    join reads each block's live rows; its input width is distributed as the sum of the two choices."""
    inputs = keras.Input((8, 8, 3))
    stem = keras.layers.ReLU(name="stem_relu")(keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs))
    a = keras.layers.Conv2D(8, 1, activation="relu", name="branch_a")(stem)
    b = keras.layers.Conv2D(16, 1, activation="relu", name="branch_b")(stem)
    b = keras.layers.DepthwiseConv2D(3, padding="same", name="branch_b_dw")(b)
    x = keras.layers.Concatenate(name="cat")([a, b])
    x = keras.layers.Conv2D(16, 1, activation="relu", name="after")(x)
    x = keras.layers.Dense(3, name="out")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    keras.utils.set_random_seed(0)
    supernet = derive_supernet(keras.Model(inputs, x), SearchOptions(alignment=4, kernel_sizes=(1, 3),
                                                                     sparsities=(0.0, 0.5)))
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    after = layers["after"]
    assert layers["branch_a"].widths == (4, 8) and layers["branch_b"].widths == (4, 8, 12, 16)
    assert layers["branch_a"].width_from is None and layers["branch_b"].width_from is None
    assert after.input_blocks == ((layers["branch_a"], 8), (layers["branch_b_dw"], 16))
    probs, widths = sm.input_width_distribution(after)
    assert widths == (8, 12, 16, 20, 24)
    expected = float(sm.expected_width(layers["branch_a"]) + sm.expected_width(layers["branch_b"]))
    assert float(np.sum(probs.numpy() * widths)) == pytest.approx(expected)
    for seed in range(4):
        assert_strips_to_the_hard_supernet(supernet, (8, 8, 3), seed)
    # One input width, two layouts: 8 + 4 and 4 + 8 channels read other rows, so the codes differ.
    choices = {name: layer.hard_choice() for name, layer in layers.items()}
    rows = {}
    for width_a, width_b in ((8, 4), (4, 8)):
        choices["branch_a"]["width"], choices["branch_b"]["width"] = width_a, width_b
        assert sm.input_width_of(after, choices) == 12
        rows[width_a] = sm.input_rows_of(after, choices)
    np.testing.assert_array_equal(rows[8], list(range(8)) + list(range(8, 12)))
    np.testing.assert_array_equal(rows[4], list(range(4)) + list(range(8, 16)))
    set_choices(supernet, {**choices, "branch_a": {**choices["branch_a"], "width": 4},
                           "branch_b": {**choices["branch_b"], "width": 8}})
    set_hard(supernet, True)
    plain, _ = strip(supernet)
    assert plain.get_layer("after").input_shape[-1] == 12 and plain.get_layer("branch_b").filters == 8
    kernel = after.effective_kernel().numpy()  # the hard child's kernel at the full shape: only live rows
    dead = [row for row in range(24) if row not in rows[4]]
    assert np.abs(kernel[:, :, rows[4], :]).sum() > 0 and not kernel[:, :, dead, :].any()


def test_a_concatenate_of_equal_branches_shares_one_width_and_strips_to_the_hard_supernet():
    """The branches (the depthwise one through the layer that sets its channels) join one width group; the layer
    after the join, past a pooling, reads two blocks live up to that width. The stripped child computes the hard
    supernet's outputs, and the size model codes the stripped kernel's rows, at every width."""
    supernet = joined_branches()
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    assert layers["branch_a"].width_from is layers["branch_b"] and layers["branch_a"].widths == (8, 16)
    assert layers["after"].input_blocks == ((layers["branch_a"], 16), (layers["branch_b_dw"], 16))
    assert sm.input_width_distribution(layers["after"])[1] == (16, 32)
    np.testing.assert_array_equal(layers["after"].input_rows((8, 8)), list(range(8)) + list(range(16, 24)))
    widths = set()
    for seed in range(4):
        plain = assert_strips_to_the_hard_supernet(supernet, (8, 8, 3), seed)
        choices = {name: layer.hard_choice() for name, layer in layers.items()}
        width = choices["branch_b"]["width"]
        widths.add(width)
        assert plain.get_layer("branch_a").filters == width and plain.get_layer("after").input_shape[-1] == 2 * width
        c = choices["after"]
        codes = sm.layer_codes(layers["after"], c["bits"], c["sparsity"], c["width"],
                               sm.input_width_of(layers["after"], choices), c["pattern"],
                               input_rows=sm.input_rows_of(layers["after"], choices))
        _, masks = strip(supernet)
        kept = np.transpose(masks["after"], (3, 0, 1, 2)) != 0
        assert codes.shape == kept.shape and np.all(kept[codes != 0]), "codes only where strip kept weights"
    assert widths == {8, 16}, "the seeds drew both widths"


def test_a_concatenate_whose_blocks_reach_an_add_or_a_flatten_keeps_its_branches():
    supernet = joined_branches(join_to_add=True)
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    assert layers["branch_a"].widths == layers["branch_b"].widths == (16,) and layers["wide"].widths == (32,)
    assert layers["after"].input_blocks == ()
    assert_strips_to_the_hard_supernet(supernet, (8, 8, 3))
    # A Dense after a Flatten of the joined 4x4 map reads each channel at every pixel.
    inputs = keras.Input((4, 4, 3))
    a = keras.layers.Conv2D(8, 1, name="branch_a")(inputs)
    b = keras.layers.Conv2D(16, 1, name="branch_b")(inputs)
    x = keras.layers.Flatten(name="flat")(keras.layers.Concatenate(name="cat")([a, b]))
    supernet = derive_supernet(keras.Model(inputs, keras.layers.Dense(3, name="out")(x)), SearchOptions(alignment=4))
    layers = {layer.name: layer for layer in searchable_layers(supernet)}
    assert layers["branch_a"].widths == (8,) and layers["branch_b"].widths == (16,)
    assert layers["out"].input_blocks == () and layers["out"].input_from is None
    assert_strips_to_the_hard_supernet(supernet, (4, 4, 3))
