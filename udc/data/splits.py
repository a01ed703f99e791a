"""Deterministic train/validation/test splits as numpy arrays and tf.data pipelines."""

import dataclasses

import numpy as np

from udc.data.loaders import RawDataset
from udc.errors import ConfigError

# make_splits serves the config binaries and udc-ensemble, whose data flags are its own.
_VAL_FRACTION_FLAGS = "--config.val_fraction (--val_fraction of udc-ensemble)"


@dataclasses.dataclass(frozen=True)
class Split:
    x: np.ndarray  # float32 in [0, 1], shape (N, H, W, C)
    y: np.ndarray  # int32 labels

    def __len__(self):
        return len(self.y)

    def take(self, n: int) -> "Split":
        return Split(self.x[:n], self.y[:n])

    def tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0):
        from udc.compat import tf

        ds = tf.data.Dataset.from_tensor_slices((self.x, self.y))
        if shuffle:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class Splits:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def input_shape(self):
        return tuple(self.train.x.shape[1:])


def _normalise(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255.0


def make_splits(
    raw: RawDataset,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Splits:
    """Holds out `val_fraction` of the training set (same seed, same split), or takes the dataset's own
    validation split when it has one (`raw.x_val`; `val_fraction` is then not used).

    `max_train`/`max_test` cut the splits for quick runs; the validation set is cut
    in proportion to the training set (a dataset's own from its head, like the test set).
    The validation set may be empty (training then runs without one); the training and
    test sets may not.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction {val_fraction} is outside [0, 1); give a fraction such as 0.1 "
                          f"in {_VAL_FRACTION_FLAGS}")
    for key, value, ensemble_flag in (("max_train_examples", max_train, "--max_train"),
                                      ("max_test_examples", max_test, "--max_test")):
        if value is not None and value < 0:
            raise ConfigError(f"{key} {value} is negative; give 0 (all) or a positive count "
                              f"in --config.{key} ({ensemble_flag} of udc-ensemble)")
    order = np.random.default_rng(seed).permutation(len(raw.y_train))
    if raw.x_val is None:
        n_val = int(round(len(order) * val_fraction))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if max_train and n_val:
            val_idx = val_idx[: max(1, int(round(max_train * val_fraction)))]
        x_val, y_val = raw.x_train[val_idx], raw.y_train[val_idx]
    else:
        train_idx, x_val, y_val = order, raw.x_val, raw.y_val
        if max_train and max_train < len(order):
            n_val = max(1, int(round(len(y_val) * max_train / len(order))))
            x_val, y_val = x_val[:n_val], y_val[:n_val]
    if max_train:
        train_idx = train_idx[:max_train]
    x_test, y_test = raw.x_test, raw.y_test
    if max_test:
        x_test, y_test = x_test[:max_test], y_test[:max_test]
    if not len(train_idx):
        raise ConfigError(f"val_fraction {val_fraction} leaves none of the {len(order)} training examples "
                          f"to train on; lower {_VAL_FRACTION_FLAGS}")
    return Splits(
        name=raw.name,
        train=Split(_normalise(raw.x_train[train_idx]), raw.y_train[train_idx]),
        val=Split(_normalise(x_val), y_val),
        test=Split(_normalise(x_test), y_test),
        num_classes=raw.num_classes,
    )
