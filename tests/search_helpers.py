"""Configs for the search tests: digits, a small supernet, a few short epochs."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "digits.py"
# What keeps a digits search short, as dotted config keys.
SHORT = {"budget_kb": 3.0, "train.epochs": 2, "search.supernet_epochs": 1, "search.search_epochs": 2,
         "search.finetune_epochs": 2, "export.tflm_samples": 8}


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
