"""CIFAR-10 from a user's copy of its python archive: a small archive of the same format, made here."""

import pickle
import tarfile

import numpy as np
import pytest

from udc.data import cifar, load_raw
from udc.errors import BadDatasetError, DatasetNotFoundError

PER_BATCH = 4


def _batch(seed: int, n: int = PER_BATCH) -> dict:
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n)], b"batch_label": b"made in a test"}


def _write_folder(folder, batches) -> None:
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))


@pytest.fixture
def batches():
    return {name: _batch(i) for i, name in enumerate(cifar.TRAIN_BATCHES + (cifar.TEST_BATCH,))}


def test_the_extracted_folder_and_the_archive_give_the_same_arrays(tmp_path, batches):
    _write_folder(tmp_path / "extracted" / cifar.FOLDER, batches)
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / cifar.ARCHIVE, "w:gz") as tar:
        tar.add(tmp_path / "extracted" / cifar.FOLDER, arcname=cifar.FOLDER)
    from_folder = load_raw("cifar10", data_dir=tmp_path / "extracted")
    from_archive = load_raw("cifar10", data_dir=archive_dir)
    assert from_folder.x_train.shape == (5 * PER_BATCH, 32, 32, 3) and from_folder.x_test.shape == (PER_BATCH, 32, 32, 3)
    assert from_folder.num_classes == 10 and from_folder.x_train.dtype == np.uint8
    for a, b in ((from_folder.x_train, from_archive.x_train), (from_folder.y_test, from_archive.y_test)):
        np.testing.assert_array_equal(a, b)
    # A row holds 1,024 red, then green, then blue values: pixel (row 0, column 1) of the first image.
    row = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(from_folder.x_train[0, 0, 1], [row[1], row[1024 + 1], row[2048 + 1]])
    assert from_folder.y_train[:PER_BATCH].tolist() == batches["data_batch_1"][b"labels"]
    assert from_archive.source.endswith(cifar.ARCHIVE)


def test_a_damaged_or_missing_batch_is_named(tmp_path, batches):
    folder = tmp_path / cifar.FOLDER
    _write_folder(folder, batches)
    (folder / "data_batch_3").write_bytes(pickle.dumps(batches["data_batch_3"])[:100])
    with pytest.raises(BadDatasetError, match=r"data_batch_3 is not a CIFAR-10 batch .*; replace it"):
        load_raw("cifar10", data_dir=tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(BadDatasetError, match=r"lacks data_batch_3; extract the whole cifar-10-python.tar.gz"):
        load_raw("cifar10", data_dir=tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / cifar.ARCHIVE).write_bytes(b"not a tar.gz")
    with pytest.raises(BadDatasetError, match="is not a readable tar.gz archive"):
        load_raw("cifar10", data_dir=tmp_path / "broken")


def test_no_copy_names_the_places_and_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("udc.data.loaders.DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setattr("udc.data.loaders.KERAS_CACHE", tmp_path / "keras")
    monkeypatch.delenv("UDC_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"dataset 'cifar10' not found \(looked in: .*\); to get it: put "
                       r"cifar-10-python.tar.gz"):
        load_raw("cifar10", data_dir=tmp_path / "nowhere")
