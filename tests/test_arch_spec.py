"""The arch spec as a type: JSON round trip, files of the untyped version, bad files refused in one line."""

import json

import pytest

from udc.arch import ARCH_SPEC_VERSION, ArchSpec, ArchSpecError, LayerSpec

LAYERS = [LayerSpec("conv0", "conv", 16, 1, 0.0, 5, 180.4, 176),
          LayerSpec("logits", "dense", 10, 16, 0.5, 4, 96.0, 104)]


def _spec(**fields):
    return ArchSpec(layers=[LayerSpec(**vars(layer)) for layer in LAYERS], target="ethos-u55-128",
                    extra_bytes=16, estimated_bytes=292.4, codec_bytes=296, budget_bytes=4096, **fields)


def test_a_spec_comes_back_from_its_file_as_it_was(tmp_path):
    spec = _spec(selection={"candidates": 3, "val_accuracy": 0.9}, budget_cycles=50000, estimated_cycles=48000)
    again = ArchSpec.load(spec.save(tmp_path / "arch_spec.json"))
    assert again == spec and again.version == ARCH_SPEC_VERSION
    assert json.loads((tmp_path / "arch_spec.json").read_text())["version"] == ARCH_SPEC_VERSION
    assert again.choices() == {"conv0": {"width": 16, "pattern": "dense", "sparsity": 0.0, "bits": 5},
                               "logits": {"width": 10, "pattern": "dense", "sparsity": 0.5, "bits": 4}}
    assert again.bits() == {"conv0": 5, "logits": 4}
    again.layer("logits").sparsity = 0.75  # what a budget repair does
    assert again.choices()["logits"]["sparsity"] == 0.75 and spec.choices()["logits"]["sparsity"] == 0.5


def test_a_kernel_size_is_part_of_the_choice_and_a_spec_without_one_leaves_it_to_the_layer(tmp_path):
    spec = _spec()
    spec.layers[0].kernel_size, spec.layers[1].kernel_size = 5, 1
    again = ArchSpec.load(spec.save(tmp_path / "arch_spec.json"))
    assert again == spec and again.choices()["conv0"]["kernel_size"] == 5
    version_2 = spec.to_json()
    for layer in version_2["layers"]:
        del layer["kernel_size"]
    old = ArchSpec.from_json({**version_2, "version": 2})
    assert old.layers[0].kernel_size is None and "kernel_size" not in old.choices()["conv0"]


def test_a_spec_written_before_the_type_reads_with_its_accelerator_as_target():
    old = {key: value for key, value in _spec().to_json().items() if key not in ("version", "target", "repairs",
                                                                                 "budget_cycles", "limit_cycles",
                                                                                 "estimated_cycles")}
    old["accelerator"] = "ethos-u65-256"
    spec = ArchSpec.from_json(old)
    assert spec.target == "ethos-u65-256" and spec.layers == LAYERS and spec.repairs == []


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(version=ARCH_SPEC_VERSION + 1),
     f"x.json has version {ARCH_SPEC_VERSION + 1}, newer than this udc reads ({ARCH_SPEC_VERSION}); upgrade udc"),
    (lambda d: d["layers"][1].pop("bits"), "x.json is malformed (layer logits lacks bits); write it again"),
    (lambda d: d["layers"][0].update(width="wide"),
     "x.json is malformed (layer conv0: width is 'wide', not a whole number); write it again"),
    (lambda d: d.pop("codec_bytes"), "x.json is malformed (it lacks codec_bytes); write it again"),
    (lambda d: d["layers"][0].update(kernel_size=4),
     "x.json is malformed (layer conv0: kernel_size 4 is not an odd positive whole number); write it again"),
], ids=["newer", "missing-layer-field", "wrong-type", "missing-field", "even-kernel"])
def test_a_spec_udc_cannot_read_is_refused_in_one_line(change, message, tmp_path):
    data = _spec().to_json()
    change(data)
    (tmp_path / "x.json").write_text(json.dumps(data))
    with pytest.raises(ArchSpecError) as error:
        ArchSpec.load(tmp_path / "x.json")
    assert str(error.value).startswith(str(tmp_path / message.split(" ", 1)[0]) + " " + message.split(" ", 1)[1])
    assert "\n" not in str(error.value)


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(ArchSpecError, match="no arch spec at .*nothing.json; run udc-search"):
        ArchSpec.load(tmp_path / "nothing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ArchSpecError, match=r"broken.json is not valid JSON \(.*\); write it again"):
        ArchSpec.load(tmp_path / "broken.json")
