"""The real path on tiny data: train, export, measure with LiteRT, Vela and TFLite Micro."""

import json

import pytest

from udc import tflite_file
from udc.deploy.export import export_model
from udc.targets import get_target


@pytest.mark.e2e
@pytest.mark.parametrize("accelerator", ["ethos-u55-128", "ethos-u65-256", "ethos-u85-256"])
def test_export_is_wholly_on_the_npu_and_as_accurate_as_keras(
        trained_digits_model, digits_splits, tmp_path, accelerator):
    report = export_model(trained_digits_model, digits_splits, get_target(accelerator), tmp_path,
                          name="digits", tflm_samples=8, log=lambda _: None)
    assert report["vela"]["npu_fraction"] == 1.0 and report["vela"]["cpu_op_names"] == []
    accuracy = report["accuracy"]
    assert accuracy["int8_tflite"] > 0.8 and abs(accuracy["drop_points"]) <= 0.3
    assert report["tflm"]["arena_bytes"] > 0 and report["tflm"]["top1_agreement_with_litert"] == 1.0
    assert report["tflite"]["saturated_bias_entries"] == 0

    data = (tmp_path / "digits.tflite").read_bytes()
    assert report["tflite"]["bytes"] == len(data)
    assert tflite_file.read_metadata(data)["dataset"] == "digits"
    assert (tmp_path / "digits_vela.tflite").read_bytes()[4:8] == b"TFL3"
    assert json.loads((tmp_path / "report.json").read_text())["vela"]["encoded_weight_bytes"] == \
        report["vela"]["encoded_weight_bytes"]
    markdown = (tmp_path / "report.md").read_text()
    assert "Vela encoded weight bytes" in markdown
    # The 2:4 row only where 2:4 weights run faster: on the U85.
    assert ("U85's 2:4 sparse format" in markdown) == accelerator.startswith("ethos-u85")
    manifest = (tmp_path / "definition.yaml").read_text()
    assert report["tflite"]["sha256"] in manifest and "CONV_2D" in manifest
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
