"""udc-search on digits: the budget holds by Vela's count, and the exported model is what was chosen."""

import json

import pytest

from search_helpers import digits_config
from udc.pipeline import search_and_export


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("search")
    config = digits_config()
    lines = []
    report = search_and_export(config, workdir, log=lines.append)
    return report, workdir, lines


@pytest.mark.e2e
def test_budget_is_met_by_vela_and_the_model_runs_wholly_on_the_npu(searched):
    report, workdir, lines = searched
    search = report["search"]
    assert search["budget_bytes"] == 3 * 1024
    assert report["vela"]["encoded_weight_bytes"] == search["vela_encoded_bytes"] <= search["budget_bytes"]
    assert report["vela"]["npu_fraction"] == 1.0 and report["vela"]["cpu_op_names"] == []
    assert report["tflite"]["saturated_bias_entries"] == 0
    assert search["estimated_bytes"] == pytest.approx(search["vela_encoded_bytes"], rel=0.05)
    # Progress per epoch: loss, accuracy, expected size vs budget, multiplier, choices.
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3 and all("E[size]" in l and "budget 3 KiB" in l and "multiplier" in l for l in epochs)
    assert sum("choices (width/sparsity/bits): conv0" in line for line in lines) == 3


@pytest.mark.e2e
def test_exported_tensors_have_the_chosen_bits_and_sparsity_and_keras_accuracy(searched):
    report, workdir, _ = searched
    spec = json.loads((workdir / "arch_spec.json").read_text())
    assert spec == report["search"]["arch_spec"]
    tensors = report["weights"]["per_tensor"]  # udc-inspect's figures
    assert len(tensors) == len(spec["layers"])
    for tensor, layer in zip(tensors, spec["layers"]):
        assert tensor["dtype"] == "INT8"
        assert tensor["distinct_values"] <= 2 ** layer["bits"] - 1, (tensor, layer)
        assert tensor["zero_fraction"] >= layer["sparsity"], (tensor, layer)
        assert tensor["shape"][0] == layer["width"]
    accuracy = report["accuracy"]
    assert accuracy["int8_tflite"] > 0.6
    assert abs(accuracy["drop_points"]) <= 0.3
    for name in ("model.tflite", "model_vela.tflite", "report.md", "stripped.keras", "definition.yaml"):
        assert (workdir / name).is_file()
    assert "## Search" in (workdir / "report.md").read_text()
