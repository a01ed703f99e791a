"""Shared fixtures. Keras 2 must be chosen before TensorFlow is imported (see udc.compat)."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import pytest  # noqa: E402

from udc.cli.common import silence_native_stderr  # noqa: E402

# TensorFlow's C++ start-up lines go to file descriptor 2 as it is imported (in every
# pytest-xdist worker and the controller); keep them out of the test report.
_restore_stderr = silence_native_stderr()
from udc.compat import keras  # noqa: E402
_restore_stderr()
from udc.data import load_raw, make_splits  # noqa: E402
from udc.models import fmnist_cnn  # noqa: E402
from udc.train import compile_for_training  # noqa: E402


@pytest.fixture(scope="session")
def digits_splits():
    """scikit-learn's digits: ships with the package, 8x8 images, 10 classes."""
    return make_splits(load_raw("digits"), val_fraction=0.1, seed=0)


@pytest.fixture(scope="session")
def trained_digits_model(digits_splits):
    """fmnist_cnn trained on digits for a few epochs (about 10 s on 2 cores)."""
    keras.utils.set_random_seed(0)
    model = compile_for_training(fmnist_cnn(digits_splits.input_shape, 10), 2e-3)
    model.fit(digits_splits.train.tf_dataset(32, shuffle=True), epochs=4, verbose=0)
    return model


@pytest.fixture(scope="session")
def digits_int8(trained_digits_model, digits_splits):
    from udc.convert import convert_to_int8

    return convert_to_int8(trained_digits_model, digits_splits.train.x[:128])
