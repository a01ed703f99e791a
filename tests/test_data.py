import numpy as np
import pytest

from udc.data import RawDataset, candidate_dirs, load_raw, make_splits
from udc.data.idx import read_idx, write_idx
from udc.errors import DatasetNotFoundError, UdcError


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    write_idx(tmp_path / f"x{suffix}", images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"x{suffix}"), images)


def test_idx_rejects_other_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def _write_fake_mnist(directory, n_train=30, n_test=10):
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(directory / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(directory / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)


def test_loads_idx_files_from_data_dir_and_env(tmp_path, monkeypatch):
    _write_fake_mnist(tmp_path / "mnist")
    raw = load_raw("mnist", data_dir=tmp_path)
    assert raw.x_train.shape == (30, 28, 28, 1) and raw.x_test.shape == (10, 28, 28, 1)
    assert raw.y_train.dtype == np.int32 and raw.num_classes == 10
    monkeypatch.setenv("UDC_DATA_DIR", str(tmp_path / "mnist"))
    assert load_raw("mnist").x_train.shape == (30, 28, 28, 1)


def test_missing_dataset_names_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("UDC_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setattr("udc.data.loaders.DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setattr("udc.data.loaders.KERAS_CACHE", tmp_path / "keras")
    with pytest.raises(DatasetNotFoundError) as error:
        load_raw("fashion_mnist", data_dir=tmp_path / "flag")
    message = str(error.value)
    for place in candidate_dirs("fashion_mnist", tmp_path / "flag"):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message and "download=True" in message


def test_unknown_dataset():
    with pytest.raises(UdcError, match="unknown dataset 'cifar'"):
        load_raw("cifar")


def test_splits_are_deterministic_disjoint_and_normalised():
    n = 200
    ids = np.arange(n, dtype=np.uint8)  # each image holds its own index
    raw = RawDataset("ids", np.broadcast_to(ids[:, None, None, None], (n, 2, 2, 1)).copy(),
                     np.zeros(n, np.int32), np.zeros((4, 2, 2, 1), np.uint8), np.zeros(4, np.int32), 10)
    a, b = make_splits(raw, val_fraction=0.2, seed=3), make_splits(raw, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(a.val.x, b.val.x)
    train_ids = set(np.round(a.train.x[:, 0, 0, 0] * 255).astype(int))
    val_ids = set(np.round(a.val.x[:, 0, 0, 0] * 255).astype(int))
    assert len(val_ids) == 40 and not train_ids & val_ids and len(train_ids | val_ids) == n
    assert a.train.x.dtype == np.float32 and 0.0 <= a.train.x.min() and a.train.x.max() <= 1.0
    assert not np.array_equal(make_splits(raw, val_fraction=0.2, seed=4).val.x, a.val.x)


def test_tf_dataset_batches(digits_splits):
    x, y = next(iter(digits_splits.train.tf_dataset(16)))
    assert tuple(x.shape) == (16, 8, 8, 1) and tuple(y.shape) == (16,)


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    raw = load_raw("fashion_mnist")
    assert raw.x_train.shape == (60000, 28, 28, 1) and raw.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(raw.y_test).tolist() == [1000] * 10
