"""Visual wake words with the mobilenet_v1 backbone (alpha 0.25), exported for an Ethos-U55-128.

The data is the user's own image folder (`image_folder`, udc.data.image_folders): --config.data_dir is required,
one subfolder of images per class (MLPerf Tiny's VWW has two, person and non_person; any number works), or
train/ and test/ folders that each hold such class subfolders. Images are resized to 96x96 and kept in colour.

    udc-search --config=configs/vww_mobilenet.py --config.data_dir=/path/to/vww --workdir=runs/vww

Every other key of configs/fashion_mnist.py can be overridden as there (--config.image_size='(128,128)',
--config.grayscale=True, --config.budget_kb=32, ...).
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("fashion_mnist_config", Path(__file__).with_name("fashion_mnist.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.dataset = "image_folder"
    config.data_dir = ""  # required: the folder of class folders (see the module docstring)
    config.image_size = (96, 96)  # MLPerf Tiny's VWW input
    config.grayscale = False
    config.backbone = "mobilenet_v1"
    # MobileNetV1-0.25 holds 208,112 weights, 211,520 B of Vela-encoded weights as dense int8 on the U55: 64 KiB
    # keeps under a third of those bytes, leaving the application room beside it in a microcontroller's flash.
    config.budget_kb = 64.0
    # Few whole epochs: an epoch of 96x96 images over a VWW-sized folder (MLPerf Tiny's holds about 100,000) is long
    # on a CPU. Raise them for a small folder.
    config.train.epochs = 10
    config.train.batch_size = 64
    config.search.batch_size = 64
    config.search.supernet_epochs = 3
    config.search.search_epochs = 1
    config.search.finetune_epochs = 3
    # A person is a person mirrored, and anywhere in the frame: flips and shifts of up to 8 pixels (8 %).
    config.augment.shift = 8
    config.augment.horizontal_flip = True
    return config
