"""The cycle model: probes cut from a template, the tables they fill, and the estimate against Vela."""

import json

import numpy as np
import pytest

from cycle_helpers import assert_expected_cycles_are_exact_at_hard_choices
from supernet_helpers import joined_branches
from udc import tflite_file
from udc.compat import keras
from udc.costs import cycle_model as cm
from udc.costs import narrowing
from udc.costs import size_model as sm
from udc.deploy.convert import convert_to_int8
from udc.deploy.strip import largest_child_template
from udc.deploy.strip import strip
from udc.errors import UdcError
from udc.report.inspect import inspect_model
from udc.space import SearchOptions, searchable_layers
from udc.space.supernet import build_supernet, fmnist_supernet
from udc.targets import get_target

TARGET = get_target("ethos-u55-128")


def test_a_narrowed_copy_keeps_the_first_channels_and_compiles(digits_int8):
    operators = narrowing.weight_operator_indices(digits_int8)
    widths = dict(zip(operators[:5], (8, 16, 24, 40, 56)))
    narrow = narrowing.narrowed(digits_int8, widths)
    before = tflite_file.weight_tensors(tflite_file.parse(digits_int8))
    after = tflite_file.weight_tensors(tflite_file.parse(narrow))
    assert [w.values.shape for w in after] == [(8, 3, 3, 1), (16, 3, 3, 8), (24, 3, 3, 16), (40, 3, 3, 24),
                                               (56, 3, 3, 40), (10, 56)]
    np.testing.assert_array_equal(after[2].values, before[2].values[:24, :, :, :16])
    assert len(after[2].scales) == 24
    result = TARGET.compile(narrow)
    assert result.cpu_ops == 0 and 0 < result.cycles < TARGET.compile(digits_int8).cycles
    with pytest.raises(UdcError, match="fewer than 512") as info:
        narrowing.narrowed(digits_int8, {operators[0]: 512})
    assert "\n" not in str(info.value)


def test_the_byte_levels_cost_fewer_bytes_in_turn_and_the_last_is_dense(digits_int8):
    def total(data):
        return sum(s.encoded_bytes for s in inspect_model(data))

    template, coarse, fewest = (cm.byte_level(digits_int8, level) for level in cm.BYTE_LEVELS)
    assert template == digits_int8
    assert total(fewest) < total(coarse) < total(digits_int8)
    weights = tflite_file.weight_tensors(tflite_file.parse(coarse))
    assert all(len(np.unique(w.values)) <= 15 and np.mean(w.values == 0) >= 0.5 for w in weights)
    # Dense: no zero, so no 2:4 pattern an Ethos-U85 would run faster than a dense layer.
    assert all(np.all(w.values == 1) for w in tflite_file.weight_tensors(tflite_file.parse(fewest)))


def test_a_cell_costs_its_floor_or_the_line_through_its_densest_levels():
    points = ((100.0, 1000.0), (500.0, 1100.0), (900.0, 1900.0))  # floor 1000; line of slope 2 above
    table = cm.LayerCycles({(8, 16, "dense", 3): points})
    assert table.cycles(8, 16, "dense", 3, 50) == 1000.0
    assert table.cycles(8, 16, "dense", 3, 300) == 1000.0  # the line (700) is under the floor
    assert table.cycles(8, 16, "dense", 3, 700) == pytest.approx(1500.0)
    assert table.cycles(8, 16, "dense", 3, 1100) == pytest.approx(2300.0)


@pytest.fixture(scope="module")
def small():
    """A small supernet on 8x8 images, its template and its tables for Ethos-U55-128."""
    keras.utils.set_random_seed(0)
    supernet = fmnist_supernet((8, 8, 1), 10, SearchOptions(), widths=(16, 16, 32, 32, 32))
    images = np.random.default_rng(0).random((32, 8, 8, 1)).astype(np.float32)
    template = largest_child_template(supernet, images)
    lines = []
    tables = cm.measure(supernet, TARGET, template, log=lines.append)
    return supernet, images, tables, lines


def test_the_probes_put_every_layer_in_every_cell(small):
    supernet, _, tables, lines = small
    layers = searchable_layers(supernet)
    schedule = cm.probe_schedule(layers)
    wanted = cm.layer_cells(layers)
    assert {name: set(t.cells) for name, t in tables.layers.items()} == {
        n: {cell + ("dense", 1 if n == "logits" else 3) for cell in c} for n, c in wanted.items()}
    assert len(schedule) == max(len(c) for c in wanted.values())  # the widest pair of layers sets the count
    assert all(len(points) == len(cm.BYTE_LEVELS) for t in tables.layers.values() for points in t.cells.values())
    assert "compiled" in lines[-1]
    assert cm.CycleTables.from_json(tables.to_json()) == tables


def test_the_tables_estimate_vela_cycles_of_an_exported_child(small):
    supernet, images, tables, _ = small
    layers = searchable_layers(supernet)
    rng = np.random.default_rng(1)
    for _ in range(2):
        choices = {layer.name: {"width": int(rng.choice(layer.widths)), "pattern": "dense",
                                "sparsity": float(rng.choice(layer.sparsities)),
                                "bits": int(rng.choice(layer.bits))} for layer in layers}
        plain, _ = strip(supernet, choices)
        data = convert_to_int8(plain, images)
        weight_bytes = dict(zip([l.name for l in layers], sm.exported_bytes(data, TARGET)["layers"]))
        estimate = tables.network_cycles(layers, choices, weight_bytes)
        vela = TARGET.compile(data).cycles
        assert estimate == pytest.approx(vela, rel=0.05), choices


def test_expected_cycles_are_the_exact_ones_at_hard_choices_and_have_gradients(small):
    supernet, _, tables, _ = small
    layers = searchable_layers(supernet)
    assert_expected_cycles_are_exact_at_hard_choices(
        tables, layers, sm.CodecTables(layers, TARGET).calibrate(),
        lambda layers: [layer.width_logits for layer in layers if len(layer.widths) > 1])


def test_cached_tables_of_an_older_format_are_measured_again(small, tmp_path):
    supernet, images, tables, _ = small
    path = tmp_path / "cycle_tables.json"
    path.write_text(json.dumps({**tables.to_json(), "version": cm.FORMAT_VERSION - 1}))
    lines = []
    again = cm.load_or_measure(path, supernet, TARGET, lambda: largest_child_template(supernet, images),
                               log=lines.append)
    assert lines[0].startswith("measuring the cycle tables") and again == tables
    assert json.loads(path.read_text())["version"] == cm.FORMAT_VERSION
    assert cm.load_or_measure(path, supernet, TARGET, None, log=lines.append) == tables  # the cache, as is


def test_a_residual_network_is_probed_in_every_cell_and_its_operators_found_by_name():
    """ResNet-8's width groups: a probe gives a group's members one width; the converter orders a stack's second
    convolution before its shortcut, Keras after, so operators are matched by name, not by order."""
    keras.utils.set_random_seed(0)
    supernet = build_supernet("resnet8", (8, 8, 1), 10, SearchOptions(), widths=(16, 16, 32))
    layers = searchable_layers(supernet)
    schedule = cm.probe_schedule(layers)
    measured = {layer.name: {cm.cell_of(layer, {n: {"width": w} for n, w in widths.items()}) for widths in schedule}
                for layer in layers}
    assert measured == {name: set(cells) for name, cells in cm.layer_cells(layers).items()}
    for widths in schedule:
        assert widths["stack2_shortcut"] == widths["stack2_b"] and widths["conv0"] == widths["stack1_b"]

    template = largest_child_template(supernet, np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32))
    names = [layer.name for layer in layers]
    operators = narrowing.layer_operators(template, names)
    assert names.index("stack2_shortcut") < names.index("stack2_b")
    assert operators[names.index("stack2_shortcut")] > operators[names.index("stack2_b")]
    weights = {w.op_index: w.values.shape for w in tflite_file.weight_tensors(tflite_file.parse(template))}
    for layer, op in zip(layers, operators):
        assert weights[op][0] == layer.max_width or layer.name == "logits", layer.name
        assert (weights[op][1:3] == (1, 1)) == layer.name.endswith("shortcut")


@pytest.mark.parametrize("channels, cells", [
    ((16, 16), [(16, 8), (16, 16), (32, 8), (32, 16)]),  # one width group: 8 + 8 or 16 + 16
    ((8, 16), [(16, 8), (16, 16), (24, 8), (24, 16)]),  # each its own: 8 + 8 or 8 + 16
])
def test_concatenated_branches_are_probed_in_every_cell_and_narrowed_at_their_offsets(channels, cells):
    """Two branches joined by a Concatenate: the layer after the join has a cell per sum of the branches' widths,
    and a probe narrows each branch in place, the joined layer's rows at both offsets."""
    supernet = joined_branches(channels=channels)
    layers = searchable_layers(supernet)
    after = supernet.get_layer("after")
    assert cm.layer_cells(layers)["after"] == cells
    schedule = cm.probe_schedule(layers)
    measured = {cm.cell_of(after, {n: {"width": w} for n, w in widths.items()}) for widths in schedule}
    assert measured == set(cells)
    template = largest_child_template(supernet, np.random.default_rng(0).random((8, 8, 8, 3)).astype(np.float32))
    index_of = dict(zip([layer.name for layer in layers],
                        narrowing.layer_operators(template, [layer.name for layer in layers])))
    full = {w.op_index: w.values for w in tflite_file.weight_tensors(tflite_file.parse(template))}
    narrow = [widths for widths in schedule if widths["branch_a"] == widths["branch_b"] == 8][0]
    probe = narrowing.narrowed(template, {index_of[name]: width for name, width in narrow.items()})
    cut = {w.op_index: w.values for w in tflite_file.weight_tensors(tflite_file.parse(probe))}
    op = index_of["after"]
    rows = list(range(8)) + list(range(channels[0], channels[0] + 8))
    np.testing.assert_array_equal(cut[op], full[op][:narrow["after"], :, :, rows])
    assert cut[index_of["branch_b_dw"]].shape[-1] == 8
    assert TARGET.compile(probe).cpu_ops == 0
    # The tables of every cell: exact at hard choices, with gradients, and near Vela on an exported child.
    tables = cm.measure(supernet, TARGET, template, log=lambda _: None)
    assert_expected_cycles_are_exact_at_hard_choices(
        tables, layers, sm.CodecTables(layers, TARGET).calibrate(),
        lambda layers: [layer.width_logits for layer in layers if len(layer.widths) > 1])
    choices = {layer.name: {"width": layer.widths[0], "pattern": "dense", "sparsity": 0.0, "bits": 8,
                            "kernel_size": layer.kernel_sizes[-1]} for layer in layers}
    images = np.random.default_rng(1).random((8, 8, 8, 3)).astype(np.float32)
    data = convert_to_int8(strip(supernet, choices)[0], images)
    weight_bytes = dict(zip([layer.name for layer in layers], sm.exported_bytes(data, TARGET)["layers"]))
    assert tables.network_cycles(layers, choices, weight_bytes) == pytest.approx(TARGET.compile(data).cycles, rel=0.05)
