"""The binaries as a user runs them: the main job on tiny data, and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "configs" / "digits.py")


def udc(binary, *args, env=None):
    command = [sys.executable, "-c", f"from udc.cli.{binary} import run; run()", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, **(env or {})})


def assert_user_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(error_lines) == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in error_lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """udc-run on digits: train for 2 epochs, export, report."""
    workdir = tmp_path_factory.mktemp("run")
    result = udc("pipeline", f"--config={DIGITS}", f"--workdir={workdir}", "--config.train.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "int8 .tflite test accuracy" in result.stdout and "(100% NPU)" in result.stdout
    return workdir


@pytest.mark.e2e
def test_main_job_writes_model_and_report(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    assert report["vela"]["npu_fraction"] == 1.0
    assert report["accuracy"]["int8_tflite"] == pytest.approx(report["accuracy"]["keras"], abs=0.003)
    for name in ("model.keras", "model.tflite", "model_vela.tflite", "report.md", "definition.yaml"):
        assert (run_dir / name).is_file()


@pytest.mark.e2e
def test_inspect_and_export_of_an_existing_tflite(run_dir, tmp_path):
    result = udc("inspect", str(run_dir / "model.tflite"))
    assert result.returncode == 0 and "64x3x3x32" in result.stdout and "codec bytes" in result.stdout
    result = udc("export", f"--config={DIGITS}", f"--model={run_dir / 'model.tflite'}",
                 "--accelerator=ethos-u85-256", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "report.json").read_text())["vela"]["target"]["accelerator"] == "ethos-u85-256"


def test_not_a_tflite_file(tmp_path):
    bogus = tmp_path / "model.tflite"
    bogus.write_text("this is text")
    assert_user_error(udc("inspect", str(bogus)), "not a TFLite flatbuffer")
    assert_user_error(udc("export", f"--config={DIGITS}", f"--model={bogus}"), "not a TFLite flatbuffer")


def test_unknown_accelerator():
    assert_user_error(udc("pipeline", f"--config={DIGITS}", "--accelerator=ethos-u99-1"),
                      "unknown accelerator 'ethos-u99-1'", "ethos-u55-128")


def test_unknown_config_key():
    assert_user_error(udc("pipeline", f"--config={DIGITS}", "--config.trian.epochs=1"),
                      "unknown config key 'trian'", "did you mean 'train'")


def test_missing_dataset(tmp_path):
    result = udc("pipeline", f"--config={DIGITS}", "--config.dataset=mnist", f"--workdir={tmp_path}",
                 env={"UDC_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)})
    assert_user_error(result, "dataset 'mnist' not found", str(tmp_path))


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_user_error(udc("pipeline", f"--config={DIGITS}", f"--workdir={blocker / 'sub'}"),
                      "cannot write to output directory")
