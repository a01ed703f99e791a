"""Shared fixtures. Keras 2 must be chosen before TensorFlow is imported (see udc.compat)."""

import fcntl
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
from udc.training.backbone import compile_for_training  # noqa: E402


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
    from udc.deploy.convert import convert_to_int8

    return convert_to_int8(trained_digits_model, digits_splits.train.x[:128])


@pytest.fixture(scope="session")
def digits_supernet(tmp_path_factory):
    """The digits supernet the search test files search on (search_helpers.train_digits_supernet; copy it
    with copy_trained): trained once per run. pytest-xdist's workers each compute session fixtures,
    so it lives in the folder the workers' temporary folders share; the first worker to need it trains
    it while holding a lock, and the others wait for it (a training is about 40 s)."""
    from search_helpers import is_trained, train_digits_supernet

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's, shared by its workers (without xdist, the parent is every run's)
    folder = base / "digits_supernet"
    with open(base / "digits_supernet.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_trained(folder):  # a worker whose training failed leaves it to the next
            train_digits_supernet(folder)
    return folder


# The slowest test files first (measured with --durations; seconds per file on a 2-core machine).
# pytest-xdist gives each worker a whole file at a time (--dist loadfile), in collection order
# (pyproject.toml turns off xdist's own reordering, by number of tests per file, which put the
# few-test but long search files last, so one worker ran them while the other had nothing left).
# Longest first keeps the short files for the end, where they fill in whichever worker is free.
# test_bad_input_search, the first to need the shared digits supernet (digits_supernet), trains it while
# the other worker runs test_search_resume: the later files that need it find it trained.
SLOWEST_FIRST = (
    "test_search_resume.py", "test_bad_input_search.py", "test_configs_tasks.py", "test_baselines.py",
    "test_search_patterns.py", "test_search_graph.py",
    "test_search_training.py", "test_bad_input_tflite.py", "test_bad_input_data.py", "test_cli.py", "test_search.py",
    "test_ensemble_models.py", "test_convert.py", "test_finetune.py", "test_size_model.py", "test_patterns.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
