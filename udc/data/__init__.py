"""Datasets as deterministic train/validation/test splits (numpy and tf.data)."""

import inspect

from udc.data.loaders import LOADERS, RawDataset, candidate_dirs, load_raw
from udc.data.splits import Split, Splits, make_splits


def split_seed(config) -> int:
    """The seed of a config's train/validation split: `split_seed`, or `seed` when it is unset. Runs that differ in
    `seed` (initial weights, batch order) but share this hold out the same validation images: members of one
    ensemble, which is calibrated on those images."""
    value = config.get("split_seed")
    return int(config.seed if value is None else value)


def loader_options(config) -> dict:
    """The config keys that the dataset's loader takes as its own arguments (image_folder's `image_size` and
    `grayscale`), those the config sets: one config serves every dataset, and each loader gets only its own keys."""
    loader = LOADERS.get(config.dataset)
    own = inspect.signature(loader).parameters if loader else ()
    return {key: config[key] for key in own if key not in ("data_dir", "download") and config.get(key) is not None}


def load_splits(config) -> Splits:
    """The splits named by a config's `dataset`, `data_dir`, `val_fraction`, `split_seed` (or `seed`), ... keys."""
    raw = load_raw(config.dataset, data_dir=config.data_dir or None, download=config.download,
                   **loader_options(config))
    return make_splits(
        raw,
        val_fraction=config.val_fraction,
        seed=split_seed(config),
        max_train=config.max_train_examples or None,
        max_test=config.max_test_examples or None,
    )


__all__ = ["LOADERS", "RawDataset", "Split", "Splits", "candidate_dirs", "load_raw",
           "load_splits", "make_splits", "split_seed"]
