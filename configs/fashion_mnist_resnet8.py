"""Fashion-MNIST with the resnet8 backbone (MLPerf Tiny's image classifier), exported for an Ethos-U55-128.

The same data, budgets, target and training as configs/fashion_mnist.py, with resnet8 in place of fmnist_cnn:
the two backbones' fronts side by side say which wins at which size. The layers joined by a residual Add share
one width choice (the search's width groups).

    udc-search --config=configs/fashion_mnist_resnet8.py --workdir=runs/resnet8
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("fashion_mnist_config", Path(__file__).with_name("fashion_mnist.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.backbone = "resnet8"
    return config
