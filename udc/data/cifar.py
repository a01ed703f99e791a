"""CIFAR-10 from a user's copy of its python archive (the MLPerf Tiny image-classification data).

The archive `cifar-10-python.tar.gz` holds `cifar-10-batches-py/` with five training batches
(`data_batch_1` .. `data_batch_5`, 10,000 images each) and `test_batch`: Python pickles of a dict
whose b"data" is (N, 3072) uint8, each row the 1,024 red, then green, then blue values of a 32x32
image, and b"labels" its N class indices. Either the archive or its extracted folder is read, in
--config.data_dir, $UDC_DATA_DIR, /usr/share/datasets/cifar10 or Keras' cache; nothing is
downloaded unless the caller asks (Keras' downloader, which unpacks into its cache).
"""

import pickle
import tarfile
from pathlib import Path

import numpy as np

from udc.errors import BadDatasetError, DatasetNotFoundError

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_HOW_TO_GET = ("put cifar-10-python.tar.gz (or its extracted cifar-10-batches-py folder) in --config.data_dir "
               "or $UDC_DATA_DIR, or pass --config.download=True")


def _read_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int32) of one pickled batch; BadDatasetError if damaged."""
    try:
        batch = pickle.loads(data, encoding="bytes")
        pixels = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[b"labels"], np.int32)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadDatasetError(f"{where} is not a CIFAR-10 batch ({type(e).__name__}: {e}); "
                              "replace it with the file from a complete copy of the archive") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
        raise BadDatasetError(f"{where} holds images of {pixels.shape[1:]} values, CIFAR-10 has 3,072 (32x32x3); "
                              "replace it with the file from a complete copy of the archive")
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _batches_in_folder(folder: Path) -> dict:
    missing = [name for name in TRAIN_BATCHES + (TEST_BATCH,) if not (folder / name).is_file()]
    if missing:
        raise BadDatasetError(f"{folder} lacks {', '.join(missing)}; extract the whole cifar-10-python.tar.gz there")
    return {name: _read_batch((folder / name).read_bytes(), str(folder / name)) for name in TRAIN_BATCHES + (TEST_BATCH,)}


def _batches_in_archive(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [name for name in TRAIN_BATCHES + (TEST_BATCH,) if name not in members]
            if missing:
                raise BadDatasetError(f"{archive} lacks {', '.join(missing)}; download the archive again")
            return {name: _read_batch(tar.extractfile(members[name]).read(), f"{archive}:{name}")
                    for name in TRAIN_BATCHES + (TEST_BATCH,)}
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BadDatasetError(f"{archive} is not a readable tar.gz archive ({e}); download it again") from None


def find_cifar10(dirs) -> Path | None:
    """The first CIFAR-10 copy (extracted folder or archive) in `dirs`, in order."""
    for directory in dirs:
        for candidate in (directory / FOLDER, directory, directory / ARCHIVE):
            if candidate.is_dir() and (candidate / TEST_BATCH).is_file():
                return candidate
            if candidate.is_file() and candidate.name == ARCHIVE:
                return candidate
    return None


def read_cifar10(dirs, download: bool = False):
    """(x_train, y_train, x_test, y_test, source) of the first copy in `dirs`; with `download`, Keras'
    downloader fetches one into its cache (the last of `dirs`) when there is none."""
    found = find_cifar10(dirs)
    if found is None and download:
        from udc.compat import keras

        keras.datasets.cifar10.load_data()
        found = find_cifar10(dirs)
    if found is None:
        raise DatasetNotFoundError(f"dataset 'cifar10' not found (looked in: {', '.join(map(str, dirs))}); "
                                   f"to get it: {_HOW_TO_GET}")
    batches = _batches_in_archive(found) if found.is_file() else _batches_in_folder(found)
    x_train = np.concatenate([batches[name][0] for name in TRAIN_BATCHES])
    y_train = np.concatenate([batches[name][1] for name in TRAIN_BATCHES])
    x_test, y_test = batches[TEST_BATCH]
    return x_train, y_train, x_test, y_test, str(found)
