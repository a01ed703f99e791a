"""Datasets as deterministic train/validation/test splits (numpy and tf.data)."""

from udc.data.loaders import LOADERS, RawDataset, candidate_dirs, load_raw
from udc.data.splits import Split, Splits, make_splits


def load_splits(config) -> Splits:
    """The splits named by a config's `dataset`, `data_dir`, `val_fraction`, `seed`, ... keys."""
    raw = load_raw(config.dataset, data_dir=config.data_dir or None, download=config.download)
    return make_splits(
        raw,
        val_fraction=config.val_fraction,
        seed=config.seed,
        max_train=config.max_train_examples or None,
        max_test=config.max_test_examples or None,
    )


__all__ = ["LOADERS", "RawDataset", "Split", "Splits", "candidate_dirs", "load_raw",
           "load_splits", "make_splits"]
