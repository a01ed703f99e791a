import subprocess
import sys

import pytest

from udc import tflite_file
from udc.errors import NotATfliteFileError


def test_metadata_round_trip_keeps_the_model_readable(digits_int8):
    tagged = tflite_file.with_metadata(digits_int8, {"udc_version": "x", "arch_spec": {"a": 1}})
    assert tflite_file.read_metadata(tagged) == {"udc_version": "x", "arch_spec": {"a": 1}}
    retagged = tflite_file.with_metadata(tagged, {"second": True})
    assert tflite_file.read_metadata(retagged) == {"second": True}
    assert tflite_file.operator_names(tflite_file.parse(retagged)) == tflite_file.operator_names(
        tflite_file.parse(digits_int8))
    assert tflite_file.read_metadata(digits_int8) is None


def test_weight_tensors_of_fmnist_cnn(digits_int8):
    weights = tflite_file.weight_tensors(tflite_file.parse(digits_int8))
    assert [w.op for w in weights] == ["CONV_2D"] * 5 + ["FULLY_CONNECTED"]
    assert weights[1].values.shape == (64, 3, 3, 32) and weights[1].dtype == "INT8"
    assert weights[1].scales.size == 64


def test_rejects_files_that_are_not_tflite(tmp_path):
    (tmp_path / "x.tflite").write_bytes(b"hello world, not a model")
    with pytest.raises(NotATfliteFileError, match="not a TFLite flatbuffer"):
        tflite_file.read_bytes(tmp_path / "x.tflite")
    with pytest.raises(NotATfliteFileError, match="cannot read"):
        tflite_file.read_bytes(tmp_path / "missing.tflite")


def test_rejects_a_truncated_flatbuffer(digits_int8):
    with pytest.raises(NotATfliteFileError):
        tflite_file.parse(digits_int8[:64])


@pytest.mark.parametrize("modules", [
    ("udc.tflite_file", "udc.targets", "udc.data", "udc.workdir_lock", "udc.workflows.config_counts",
     "udc.ensemble.calibration"),
    *((f"udc.cli.{binary}",) for binary in ("inspect", "export", "search", "train", "pipeline", "ensemble")),
])  # one binary a process: their flags would clash
def test_what_the_binaries_check_first_loads_no_tensorflow(modules):
    """A bad .tflite, dataset, target or workdir is refused before TensorFlow's start-up (seconds): the modules
    that check them import no TensorFlow (tflite_file reads with tflite-micro's copy of the TFLite schema)."""
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'tensorflow_model_optimization') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
