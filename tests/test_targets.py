"""Targets as objects: the registry, the Ethos-U facts, and a new target from one module."""

import importlib
from pathlib import Path

import ml_collections
import numpy as np
import pytest

import udc.targets
from search_helpers import digits_config
from udc.arch import measure_arch_spec
from udc.compat import keras
from udc.costs import cycle_model
from udc.costs import size_model as sm
from udc.deploy.strip import largest_child_template
from udc.errors import UnknownTargetError
from udc.search.selection import Sizes
from udc.space import SearchOptions
from udc.space.supernet import fmnist_supernet
from udc.targets import ethos_u, get_target, staircase, target_names, target_of
from udc.targets.ethos_u import ACCELERATORS
from udc.targets.layer_model import layer_model

FAKE_TARGETS = Path(__file__).parent / "fake_targets"
RNG = np.random.default_rng(0)


def test_every_vela_accelerator_is_a_target_with_defaults():
    assert "ethos-u55-128" in ACCELERATORS and "ethos-u85-2048" in ACCELERATORS
    assert set(ACCELERATORS) <= set(target_names())
    for name in ACCELERATORS:
        target = get_target(name)
        assert target.name == name and target.memory_mode == "Shared_Sram"
        assert target.system_config.startswith("Ethos_U")
    assert get_target("ethos-u65-256", system_config="Ethos_U65_High_End",
                      memory_mode="Dedicated_Sram").memory_mode == "Dedicated_Sram"


def test_ethos_u_facts_live_on_the_target():
    u55, u65, u85 = get_target("ethos-u55-128"), get_target("ethos-u65-512"), get_target("ethos-u85-256")
    assert [t.channel_alignment("conv") for t in (u55, u65, u85)] == [8, 16, 8]
    assert (u55.weight_encoder_api, u65.weight_encoder_api, u85.weight_encoder_api) == (
        "Ethos_U55_128", "Ethos_U65_512", None)
    assert (u55.cores, u65.cores) == (1, 2)
    assert len(u55.weight_traversals("conv")) == 2 and u85.weight_traversals("conv") == (None,)
    assert u55.describe() == {"name": "ethos-u55-128", "accelerator": "ethos-u55-128",
                              "system_config": "Ethos_U55_High_End_Embedded", "memory_mode": "Shared_Sram"}


def test_every_configuration_has_an_alignment_per_layer_kind():
    for name in ACCELERATORS:
        assert all(get_target(name).channel_alignment(kind) >= 1 for kind in ("conv", "depthwise", "dense"))
    assert get_target("ethos-u85-512").channel_alignment("conv") == 16
    assert get_target("ethos-u85-256").channel_alignment("depthwise") == 16


@pytest.mark.parametrize("name, block", [("ethos-u55-128", 8), ("ethos-u85-512", 16)])
def test_the_conv_alignment_is_the_block_of_vela_cycles(name, block):
    """The alignment table holds what Vela says: one conv compiled at 1..2*block+2 output channels has
    its cheapest cycles per channel at the multiples of the block (udc.targets.staircase)."""
    target = get_target(name)
    points = staircase.measure_series(target, "conv output", range(1, 2 * block + 3))
    widths = staircase.efficient_widths(points)
    assert block in widths and all(w % block == 0 for w in widths)
    assert staircase.staircase_period(widths) == target.channel_alignment("conv")


def test_the_staircase_block_ignores_an_odd_width_and_needs_a_pattern():
    assert staircase.staircase_period([16, 32, 49]) == 16
    assert staircase.staircase_period([3, 16]) == 1 and staircase.staircase_period([]) == 1
    assert staircase.alignment_by_kind({"conv output": 4, "conv input": 8, "depthwise": 16, "dense output": 4}) == {
        "conv": 8, "depthwise": 16, "dense": 4}


@pytest.mark.parametrize("kind, shape", [("conv", (24, 3, 3, 16)), ("depthwise", (1, 3, 3, 32)), ("dense", (10, 48))])
def test_a_u85_layer_is_measured_by_vela_on_a_model_of_its_own(kind, shape):
    """The one-layer model Vela compiles for U85 bytes: wholly on the NPU, and for a U55 its bytes
    are close to those of Vela's encoder API (the same weights reach the same encoder; the API
    assumes an OFM block depth of 16 where the compiler picks its own: 32 B apart on the conv)."""
    codes = np.where(RNG.random(shape) < 0.5, 0, RNG.integers(-127, 128, shape)).astype(np.int8)
    u55, u85 = get_target("ethos-u55-128"), get_target("ethos-u85-256")
    data = layer_model(codes, kind)
    compiled = u85.compile(data, "layer")
    assert compiled.cpu_ops == 0 and compiled.npu_fraction == 1.0
    assert u85.encoded_weight_bytes(codes, kind) == compiled.encoded_weight_bytes > 0
    assert u55.compile(data, "layer").encoded_weight_bytes == pytest.approx(
        u55.encoded_weight_bytes(codes, kind), rel=0.02)
    # Zeros cost fewer bytes: the figure follows the codes, not only the shape.
    assert u85.encoded_weight_bytes(np.zeros_like(codes), kind) < compiled.encoded_weight_bytes


def test_unknown_target_is_one_line_that_lists_the_choices():
    with pytest.raises(UnknownTargetError, match="unknown target 'ethos-u56-128'.*ethos-u55-128") as info:
        get_target("ethos-u56-128")
    assert "\n" not in str(info.value)


def test_a_config_names_its_target_and_its_options():
    config = ml_collections.ConfigDict({"export": {"accelerator": "ethos-u65-256", "system_config": "",
                                                   "memory_mode": "Dedicated_Sram"}})
    target = target_of(config)
    assert (target.name, target.memory_mode, target.system_config) == (
        "ethos-u65-256", "Dedicated_Sram", "Ethos_U65_Embedded")
    assert target_of(config, "ethos-u55-64").name == "ethos-u55-64"


def test_a_new_target_needs_one_module_in_udc_targets(monkeypatch, digits_int8):
    """tests/fake_targets/fake_npu.py, put on the package's path, is all it takes: the registry finds it,
    the search options follow its alignment, and exact bytes, calibrated estimates, the arch spec,
    compiling a model and the cycle tables use its cost table."""
    monkeypatch.setattr(udc.targets, "__path__", list(udc.targets.__path__) + [str(FAKE_TARGETS)])
    fake = get_target("fake-npu")
    assert "fake-npu" in target_names() and fake.describe() == {"name": "fake-npu"}
    options = SearchOptions.for_target(fake)
    assert options.widths_for(16) == (4, 8, 12, 16)

    keras.utils.set_random_seed(0)
    model = fmnist_supernet((8, 8, 1), 10, options, widths=(8, 8, 16, 16, 16))
    sizes = Sizes(model, fake)
    sizes.calibrate()
    choices = {layer.name: {"width": layer.widths[len(layer.widths) // 2], "sparsity": 0.5, "bits": 4}
               for layer in sizes.layers}
    table = importlib.import_module("udc.targets.fake_npu")
    for layer in sizes.layers:
        c = choices[layer.name]
        width = None if sm.layer_kind(layer) == "depthwise" else c["width"]
        codes = sm.layer_codes(layer, c["bits"], c["sparsity"], width, sm.input_width_of(layer, choices))
        by_table = int(np.count_nonzero(codes) * table.BYTES_PER_NONZERO[sm.layer_kind(layer)]) + table.HEADER_BYTES
        assert sizes.layer_bytes(layer, choices) == by_table
    spec = measure_arch_spec(model, choices, sizes.tables)
    assert spec.target == "fake-npu"
    assert spec.estimated_bytes == pytest.approx(spec.codec_bytes, rel=0.1)

    measured = fake.compile(digits_int8)
    assert measured.encoded_weight_bytes > 0 and measured.cycles == measured.encoded_weight_bytes

    # Its cycle tables: at the template's own weights the estimate is what the fake target reports.
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    template = largest_child_template(model, images)
    tables = cycle_model.measure(model, fake, template, log=lambda _: None)
    largest = {layer.name: {"width": layer.widths[-1], "sparsity": 0.0, "bits": 8} for layer in sizes.layers}
    weight_bytes = dict(zip([layer.name for layer in sizes.layers], sm.exported_bytes(template, fake)["layers"]))
    own = sum(op["cycles"] for op in fake.operator_cycles(template))
    assert tables.network_cycles(sizes.layers, largest, weight_bytes) == pytest.approx(own)


def _two_four(codes):
    """`codes` with the 2 smallest magnitudes of every group of 4 input-channel weights set to zero."""
    groups = codes.copy().reshape(-1, 4)
    np.put_along_axis(groups, np.argsort(np.abs(groups), axis=1)[:, :2], 0, axis=1)
    return groups.reshape(codes.shape)


def test_vela_runs_2_4_weights_faster_on_the_u85_only():
    """One 3x3 convolution, 32 -> 64 channels: 2:4 along the input channels is Vela's sparse format on the
    Ethos-U85 and halves its cycles; random 50 % zeros save bytes, not cycles; the U55 has no such format."""
    rng = np.random.default_rng(0)
    dense = (rng.integers(1, 128, size=(64, 3, 3, 32)) * rng.choice((-1, 1), size=(64, 3, 3, 32))).astype(np.int8)
    models = {"dense": dense, "2:4": _two_four(dense), "random 50 %": dense * (rng.random(dense.shape) < 0.5)}
    assert ethos_u.two_four_problems(models["2:4"], "conv") == []
    assert "fewer than 2 zeros" in ethos_u.two_four_problems(models["random 50 %"], "conv")[0]
    u85, u55 = get_target("ethos-u85-256"), get_target("ethos-u55-128")
    cycles = {name: u85.operator_cycles(layer_model(codes, "conv"))[1]["cycles"] for name, codes in models.items()}
    assert cycles["2:4"] < 0.6 * cycles["dense"] and cycles["random 50 %"] > 0.8 * cycles["dense"]
    formats = {name: u85.weight_formats(layer_model(codes, "conv"))[1] for name, codes in models.items()}
    assert "Sparse2_4" in formats["2:4"] and "Sparse2_4" not in formats["random 50 %"] + formats["dense"]
    u55_cycles = [u55.operator_cycles(layer_model(models[name], "conv"))[1]["cycles"] for name in ("dense", "2:4")]
    assert u55_cycles[1] > 0.9 * u55_cycles[0]


def test_the_2_4_rules_name_what_breaks_them():
    codes = _two_four(np.ones((8, 3, 3, 8), np.int8))
    assert ethos_u.two_four_problems(codes, "depthwise") == ["a depthwise layer"]
    # The input depth is padded with zeros: dense weights of 2 input channels meet the rules, of 3 do not.
    assert ethos_u.two_four_problems(np.ones((8, 2), np.int8), "dense") == []
    assert ethos_u.two_four_problems(np.ones((8, 3), np.int8), "dense") == [
        "8 of 8 groups of 4 input-channel weights with fewer than 2 zeros"]
    codes[0, 0, 0, 3] = -128  # a kept weight: the zeros of its group stay
    assert ethos_u.two_four_problems(codes, "conv") == ["a code of -128"]


def test_a_choice_the_target_cannot_run_is_refused_before_anything_runs(monkeypatch, tmp_path):
    """The fake target reads 4- to 8-bit codes only (`Target.unsupported`): asking its search for
    2-bit weights is one clear line, before the workdir is made; Ethos-U runs every option udc has."""
    from udc.errors import ConfigError
    from udc.workflows.pipeline import search_and_export

    monkeypatch.setattr(udc.targets, "__path__", list(udc.targets.__path__) + [str(FAKE_TARGETS)])
    config = digits_config(bits=(2, 4, 8))
    config.accelerator = "fake-npu"
    with pytest.raises(ConfigError, match=r"^fake-npu cannot run bits 2 on the conv layers of fmnist_cnn: its weight "
                       r"decoder reads 4- to 8-bit codes; drop 2 from --config.search.bits or choose another "
                       r"--config.accelerator$"):
        search_and_export(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    u55 = get_target("ethos-u55-128")
    assert all(u55.unsupported(kind, dim, option) is None for kind in ("conv", "depthwise", "dense")
               for dim, options in (("bits", range(2, 9)), ("sparsity", (0.0, 0.5, 0.9))) for option in options)


def test_a_latency_budget_in_ms_is_cycles_at_the_system_configs_clock():
    from udc.errors import ConfigError
    from udc.search.settings import budget_cycles

    u55 = get_target("ethos-u55-128")
    assert u55.clock_hz == 500e6 and get_target("ethos-u85-256", system_config="Ethos_U85_SYS_Flash_Low").clock_hz == 200e6

    def config(cycles, ms):
        return ml_collections.ConfigDict({"search": {"budget_cycles": cycles, "budget_ms": ms}})

    assert budget_cycles(config(0, 0.12), u55) == 60_000
    assert budget_cycles(config(90_000, 0), u55) == 90_000 and budget_cycles(config(0, 0), u55) == 0
    for bad, match in ((config(90_000, 0.1), "both set a latency budget"), (config(-1, 0), "budget_cycles must be"),
                       (config(0, "fast"), "budget_ms must be"), (config(1.5, 0), "whole number")):
        with pytest.raises(ConfigError, match=match) as info:
            budget_cycles(bad, u55)
        assert "\n" not in str(info.value)
