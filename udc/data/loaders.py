"""Dataset loaders: each returns the raw train and test arrays of one dataset.

Images come back as uint8 arrays of shape (N, H, W, C) (keyword-spotting audio as 49x10 MFCC
"images") and labels as int32. Nothing is downloaded unless the caller passes download=True.
A damaged file or arrays that do not fit together raise BadDatasetError as the dataset is
built (see udc.data.validation).
"""

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np

from udc.data import speech_commands, synthetic_keywords
from udc.data.cifar import read_cifar10
from udc.data.idx import IdxFormatError, read_idx
from udc.data.image_folders import read_image_folder
from udc.data.validation import check_dataset
from udc.errors import BadDatasetError, DatasetNotFoundError, UdcError

DEBIAN_DATASETS = Path("/usr/share/datasets")
KERAS_CACHE = Path(os.path.expanduser("~/.keras/datasets"))
UDC_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "udc"

_IDX_FILES = {  # file stem, number of dimensions: images (N, H, W), labels (N,)
    "x_train": ("train-images-idx3-ubyte", 3),
    "y_train": ("train-labels-idx1-ubyte", 1),
    "x_test": ("t10k-images-idx3-ubyte", 3),
    "y_test": ("t10k-labels-idx1-ubyte", 1),
}

_HOW_TO_GET = {
    "fashion_mnist": "install the Debian package (sudo apt-get install dataset-fashion-mnist), "
    "point --config.data_dir or $UDC_DATA_DIR at a folder with the four IDX files, "
    "or pass --config.download=True",
    "mnist": "point --config.data_dir or $UDC_DATA_DIR at a folder with the four MNIST IDX files, "
    "or pass --config.download=True",
}

_HOW_TO_REPAIR = {
    "fashion_mnist": "re-download or re-install it, e.g. sudo apt-get install --reinstall dataset-fashion-mnist",
    "mnist": "replace it with a complete copy, or delete it and pass --config.download=True",
}


@dataclasses.dataclass(frozen=True)
class RawDataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str = ""  # where the files came from, named in errors; empty for data built in code
    # A dataset's own validation split (Speech Commands' list); without one, make_splits draws it from training.
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self):
        check_dataset(self)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])


def candidate_dirs(name: str, data_dir=None) -> list[Path]:
    """Where the files of dataset `name` are looked for, in order."""
    debian_name = name.replace("_", "-")
    roots = [Path(p) for p in (data_dir, os.environ.get("UDC_DATA_DIR")) if p]
    dirs = []
    for root in roots:
        dirs += [root, root / debian_name, root / name]
    dirs += [DEBIAN_DATASETS / debian_name, KERAS_CACHE / debian_name]
    return list(dict.fromkeys(dirs))


def _find_idx_file(directory: Path, stem: str):
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_dataset(name: str, data_dir, download: bool) -> RawDataset:
    looked_in = candidate_dirs(name, data_dir)
    for directory in looked_in:
        files = {key: _find_idx_file(directory, stem) for key, (stem, _) in _IDX_FILES.items()}
        if all(files.values()):
            try:
                arrays = {key: read_idx(path, _IDX_FILES[key][1]) for key, path in files.items()}
            except IdxFormatError as e:
                raise BadDatasetError(f"{e}; {_HOW_TO_REPAIR[name]}") from None
            return RawDataset(
                name=name,
                x_train=arrays["x_train"][..., None],
                y_train=arrays["y_train"].astype(np.int32),
                x_test=arrays["x_test"][..., None],
                y_test=arrays["y_test"].astype(np.int32),
                num_classes=10,
                source=str(directory),
            )
    if name == "mnist" and (KERAS_CACHE / "mnist.npz").is_file():
        return _load_keras_mnist_npz(KERAS_CACHE / "mnist.npz")
    if download:
        return _download(name)
    places = ", ".join(str(d) for d in looked_in)
    raise DatasetNotFoundError(
        f"dataset '{name}' not found (looked in: {places}); to get it: {_HOW_TO_GET[name]}"
    )


def _load_keras_mnist_npz(path: Path) -> RawDataset:
    try:
        with np.load(path) as f:
            arrays = [f[key] for key in ("x_train", "y_train", "x_test", "y_test")]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise BadDatasetError(f"{path} (Keras' MNIST cache) is corrupt ({e}); delete it and pass "
                              "--config.download=True, or point --config.data_dir at the IDX files") from None
    x_train, y_train, x_test, y_test = arrays
    return RawDataset("mnist", x_train[..., None], y_train.astype(np.int32), x_test[..., None],
                      y_test.astype(np.int32), 10, source=str(path))


def _download(name: str) -> RawDataset:
    """Fetches the dataset with Keras' downloader into its cache, then reads it from there."""
    from udc.compat import keras

    getattr(keras.datasets, name).load_data()
    return _load_idx_dataset(name, None, download=False)


def load_fashion_mnist(data_dir=None, download=False) -> RawDataset:
    return _load_idx_dataset("fashion_mnist", data_dir, download)


def load_mnist(data_dir=None, download=False) -> RawDataset:
    return _load_idx_dataset("mnist", data_dir, download)


def load_digits(data_dir=None, download=False, test_fraction=0.2) -> RawDataset:
    """scikit-learn's 8x8 digits (1,797 images, ships with the package): for fast tests.

    It has no official test split, so a fixed 20 % (seed 0) is held out.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return RawDataset("digits", images[train], labels[train], images[test], labels[test], 10)


def load_cifar10(data_dir=None, download=False) -> RawDataset:
    """CIFAR-10 (32x32 RGB, 10 classes) from a user's copy of its python archive (`udc.data.cifar`)."""
    dirs = list(dict.fromkeys(candidate_dirs("cifar10", data_dir) + [KERAS_CACHE]))
    x_train, y_train, x_test, y_test, source = read_cifar10(dirs, download)
    return RawDataset("cifar10", x_train, y_train, x_test, y_test, 10, source=source)


def load_image_folder(data_dir=None, download=False, image_size=(96, 96), grayscale=False) -> RawDataset:
    """A user's images in --config.data_dir, one folder per class (`udc.data.image_folders`); nothing downloads."""
    x_train, y_train, x_test, y_test, class_names, source = read_image_folder(data_dir, image_size, grayscale)
    return RawDataset("image_folder", x_train, y_train, x_test, y_test, len(class_names), source=source)


def _keyword_dataset(name: str, folder: Path) -> RawDataset:
    splits = speech_commands.read_speech_commands(folder, UDC_CACHE)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (splits[split] for split in speech_commands.SPLITS)
    return RawDataset(name, x_train, y_train, x_test, y_test, len(speech_commands.CLASS_NAMES), source=str(folder),
                      x_val=x_val, y_val=y_val)


def load_speech_commands(data_dir=None, download=False) -> RawDataset:
    """Google Speech Commands' 12-class task (49x10 MFCCs) from a user's copy (`udc.data.speech_commands`),
    with its own validation split; never downloaded."""
    dirs = candidate_dirs("speech_commands", data_dir)
    folder = speech_commands.find_speech_commands(dirs)
    if folder is None:
        raise DatasetNotFoundError(f"dataset 'speech_commands' not found (looked in: {', '.join(map(str, dirs))}); "
                                   f"to get it: {speech_commands.HOW_TO_GET}")
    return _keyword_dataset("speech_commands", folder)


def load_synthetic_keywords(data_dir=None, download=False,
                            utterances_per_word=synthetic_keywords.DEFAULT_PER_WORD) -> RawDataset:
    """The Speech Commands task on keywords spoken by espeak-ng (`udc.data.synthetic_keywords`): SYNTHETIC speech,
    generated into udc's cache the first time; `data_dir` is not used."""
    folder = synthetic_keywords.generated_folder(UDC_CACHE / "synthetic_keywords", utterances_per_word)
    return _keyword_dataset("synthetic_keywords", folder)


LOADERS = {
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "digits": load_digits,
    "cifar10": load_cifar10,
    "image_folder": load_image_folder,
    "speech_commands": load_speech_commands,
    "synthetic_keywords": load_synthetic_keywords,
}


def load_raw(name: str, data_dir=None, download=False, **options) -> RawDataset:
    """Dataset `name`; `options` are its loader's own arguments (image_folder's image_size and grayscale)."""
    if name not in LOADERS:
        raise UdcError(f"unknown dataset '{name}'; choose one of: {', '.join(sorted(LOADERS))}")
    return LOADERS[name](data_dir=data_dir, download=download, **options)
