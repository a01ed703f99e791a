"""Configs for the search tests: digits, a small supernet, a few short epochs."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def digits_config(**search):
    spec = importlib.util.spec_from_file_location("digits_config", ROOT / "configs" / "digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.budget_kb = 3.0
    config.search.warmup_epochs = 1
    config.search.search_epochs = 2
    config.search.finetune_epochs = 2
    config.export.tflm_samples = 8
    for key, value in search.items():
        config.search[key] = value
    return config
