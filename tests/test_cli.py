"""The binaries as a user runs them: the main job on tiny data, and bad input."""

import json

import pytest

from cli_helpers import DIGITS, assert_user_error, udc


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """udc-run on digits: train for 2 epochs, export, report."""
    workdir = tmp_path_factory.mktemp("run")
    result = udc("pipeline", f"--config={DIGITS}", f"--workdir={workdir}", "--config.train.epochs=2",
                 env={"UDC_VERBOSE": ""}, umask=0o022)
    assert result.returncode == 0, result.stderr[-3000:]
    (workdir / "stdout.txt").write_text(result.stdout)
    (workdir / "stderr.txt").write_text(result.stderr)
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
def test_a_run_prints_only_udc_lines_and_writes_files_as_the_umask_says(run_dir):
    """No TensorFlow start-up lines on stderr; outputs 0644 under umask 022 (not mkstemp's 0600)."""
    stdout, stderr = (run_dir / "stdout.txt").read_text(), (run_dir / "stderr.txt").read_text()
    assert stderr == "", stderr[-2000:]
    assert stdout.startswith("training fmnist_cnn on digits")
    for name in ("model.keras", "model.tflite", "report.json", "definition.yaml"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o644, name


def test_help_lists_the_binarys_own_flags():
    for binary, own in (("search", "--workdir"), ("export", "--model"), ("ensemble", "--max_drop"),
                        ("benchmark", "--budgets_kb"), ("train", "--workdir"), ("pipeline", "--accelerator"),
                        ("inspect", "--accelerator")):
        result = udc(binary, "--help")
        assert own in result.stdout, (binary, result.stdout[-2000:])
        assert "--[no]verbose" in result.stdout and "Try --helpfull" in result.stdout


@pytest.mark.e2e
def test_inspect_and_export_of_an_existing_tflite(run_dir, tmp_path):
    result = udc("inspect", str(run_dir / "model.tflite"))
    assert result.returncode == 0 and "64x3x3x32" in result.stdout and "codec bytes" in result.stdout
    result = udc("export", f"--config={DIGITS}", f"--model={run_dir / 'model.tflite'}",
                 "--accelerator=ethos-u85-256", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "report.json").read_text())["vela"]["target"]["name"] == "ethos-u85-256"


def test_not_a_tflite_file(tmp_path):
    bogus = tmp_path / "model.tflite"
    bogus.write_text("this is text")
    assert_user_error(udc("inspect", str(bogus)), "not a TFLite flatbuffer")
    assert_user_error(udc("export", f"--config={DIGITS}", f"--model={bogus}"), "not a TFLite flatbuffer")


def test_unknown_target():
    assert_user_error(udc("pipeline", f"--config={DIGITS}", "--accelerator=ethos-u99-1"),
                      "unknown target 'ethos-u99-1'", "ethos-u55-128")


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
