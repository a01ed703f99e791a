"""Fashion-MNIST with the fmnist_cnn backbone, exported for an Ethos-U55-128.

Override any key from the command line, e.g. --config.train.epochs=2.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.dataset = "fashion_mnist"
    config.data_dir = ""  # empty: $UDC_DATA_DIR, the Debian package, Keras' cache
    config.download = False  # True lets Keras fetch a missing dataset
    config.val_fraction = 0.1
    config.max_train_examples = 0  # 0 = all; small values for quick trials
    config.max_test_examples = 0
    config.seed = 0
    config.backbone = "fmnist_cnn"

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 5
    config.train.batch_size = 128
    config.train.learning_rate = 2e-3

    config.export = ml_collections.ConfigDict()
    config.export.accelerator = "ethos-u55-128"
    config.export.system_config = ""  # empty: the family's default (see udc.hardware)
    config.export.memory_mode = ""
    config.export.num_calibration = 256  # training images that set activation ranges
    config.export.tflm_samples = 16  # test images also run through TFLite Micro
    return config
