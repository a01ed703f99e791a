"""Keyword spotting with the ds_cnn backbone (DS-CNN-S's widths), exported for an Ethos-U55-128.

By default the data is `synthetic_keywords`: Speech Commands' 12-class task (ten words, silence, unknown) on
words spoken by espeak-ng on this machine (`udc.data.synthetic_keywords`, generated into ~/.cache/udc, or
$XDG_CACHE_HOME/udc, the first time; nothing is downloaded). It is SYNTHETIC speech: a model trained on it says
little about people's voices.

    udc-search --config=configs/kws_ds_cnn.py --workdir=runs/kws

A real copy of Google's Speech Commands (the extracted archive: one folder per word,
validation_list.txt, testing_list.txt, _background_noise_) takes the same network and features:

    udc-search --config=configs/kws_ds_cnn.py --config.dataset=speech_commands \
        --config.data_dir=/path/to/speech_commands_v0.02 --config.train.epochs=5 \
        --config.search.supernet_epochs=2 --config.search.search_epochs=1 --config.search.finetune_epochs=2 \
        --workdir=runs/kws_real

The epochs below are sized for the synthetic set's 1,440 training clips; Speech Commands holds tens of thousands,
so the command above lowers them to configs/fashion_mnist.py's. Every other key of configs/fashion_mnist.py can be
overridden as there.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("fashion_mnist_config", Path(__file__).with_name("fashion_mnist.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    # A real copy instead: --config.dataset=speech_commands --config.data_dir=/path/to/speech_commands_v0.02.
    config.dataset = "synthetic_keywords"
    # The synthetic set's size (udc.data.synthetic_keywords): each word spoken this many times; other datasets
    # ignore it. Each size is generated once into its own cache folder; 150 is the loader's default.
    config.utterances_per_word = 150
    config.backbone = "ds_cnn"
    # The full ds_cnn is ML-zoo's DS-CNN-S (a 54,464-byte int8 .tflite; as dense int8, about 25,000 B of
    # Vela-encoded weights on the U55): 16 KiB searches a model of that size class with a third of those bytes out.
    config.budget_kb = 16.0
    # 1,440 training clips at 150 per word: 12 batches of 128 per epoch, so many more epochs than Fashion-MNIST's
    # 422. Measured with these on a shared 2-core machine: 89.44 % int8 test accuracy at 15,824 B, 7 minutes.
    config.train.epochs = 40
    config.search.supernet_epochs = 30
    config.search.search_epochs = 10
    config.search.finetune_epochs = 15
    config.export.num_calibration = 512  # a third of the training clips set the activation ranges
    # The features are (time, cepstral coefficient) "images": a flip reverses the coefficients and a shift moves
    # them into each other's place, which no recording does. The synthetic clips already place each word at a
    # random time.
    config.augment.shift = 0
    config.augment.horizontal_flip = False
    return config
