"""scikit-learn's 8x8 digits (ships with the package): a quick trial of the whole path."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("fashion_mnist_config", Path(__file__).with_name("fashion_mnist.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.dataset = "digits"
    config.train.epochs = 10
    config.train.batch_size = 32
    return config
