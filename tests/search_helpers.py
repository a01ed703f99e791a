"""Configs for the search tests (digits, a small supernet, a few short epochs) and the supernet they share."""

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "digits.py"
# What keeps a digits search short, as dotted config keys.
SHORT = {"budget_kb": 3.0, "train.epochs": 2, "search.supernet_epochs": 1, "search.search_epochs": 2,
         "search.finetune_epochs": 2, "export.tflm_samples": 8}
# The digits supernet the search test files share (conftest's `digits_supernet`): a search on it passes
# these to digits_config, as they are keys of the supernet's config (only PER_BUDGET_KEYS may differ).
# test_search_training's 2 epochs of 20 steps: as many steps as test_search's one epoch of the whole split.
TRAINED = {"supernet_epochs": 2, "steps_per_epoch": 20}
_TRAINING_LOG = "training.json"


def _overrides(search) -> dict:
    return SHORT | {f"search.{key}": value for key, value in search.items()}


def digits_config(**search):
    spec = importlib.util.spec_from_file_location("digits_config", DIGITS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for key, value in _overrides(search).items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return config


def digits_flags(**search) -> list:
    """The command-line flags that give a binary the config of digits_config(**search)."""
    return [f"--config={DIGITS}"] + [f"--config.{key}={value}" for key, value in _overrides(search).items()]


def train_digits_supernet(folder) -> None:
    """Trains the shared digits supernet (digits_config(**TRAINED)) into FOLDER/supernet, as the
    `search.supernet` of a udc-search run in FOLDER/workdir stopped once the supernet has trained;
    the run's empty search stage is taken away, so that a search at any budget may start on a copy
    (copy_trained). The run's log lines go to FOLDER/training.json, written last: a folder without
    it holds a training that did not finish."""
    from udc.fileio import write_json_atomic
    from udc.search.state import SEARCH_CHECKPOINT_DIR, STATE_FILE
    from udc.workflows.pipeline import search_and_export

    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    workdir, lines = folder / "workdir", []
    config = digits_config(**TRAINED, tensorboard=True, supernet=str(folder / "supernet"))
    stop = TRAINED["supernet_epochs"]  # the search's epochs come after the supernet's
    assert search_and_export(config, workdir, log=lines.append, stop_after_epochs=stop) is None
    (workdir / STATE_FILE).unlink()
    shutil.rmtree(workdir / SEARCH_CHECKPOINT_DIR, ignore_errors=True)
    write_json_atomic(folder / _TRAINING_LOG, lines)


def is_trained(folder) -> bool:
    return (Path(folder) / _TRAINING_LOG).is_file()


def copy_trained(folder, workdir, supernet=None) -> list:
    """The shared digits supernet (train_digits_supernet in FOLDER) copied to SUPERNET (a search's
    `search.supernet`; default WORKDIR/supernet, udc-search's own place for it) and its run's workdir
    to WORKDIR: the float model and the training's TensorBoard events, no search yet. Returns the
    training's log lines (the warm start, the supernet's epochs), which a search on the copy does not
    repeat."""
    folder, workdir = Path(folder), Path(workdir)
    shutil.copytree(folder / "workdir", workdir, dirs_exist_ok=True)
    shutil.copytree(folder / "supernet", Path(supernet or workdir / "supernet"))
    return json.loads((folder / _TRAINING_LOG).read_text())
