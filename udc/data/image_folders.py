"""A user's own images, one folder per class (the layout of Keras' `image_dataset_from_directory`): visual wake
words or any small image classifier.

--config.data_dir is required (nothing is looked for elsewhere, nothing is downloaded) and holds either
  <dir>/train/<class>/... and <dir>/test/<class>/...: the two splits as given, with the same class folders, or
  <dir>/<class>/...: then 10 % of each class's images (at least one; seed 0) are held out as the test split, the
  same files on every run, so each class needs two images or more.
Label i is the i-th class folder in sorted order; the dataset's `source` names them. Images are the .bmp, .gif
(first frame), .jpeg, .jpg and .png files anywhere under their class folder (other files are skipped, as Keras
does). Each is decoded here, one file at a time, so that a damaged one is named (Keras fails inside tf.data
without the file's name), resized bilinearly to `image_size` (height, width; the aspect ratio is not kept, as in
Keras) and kept as uint8 with 3 colour channels, or 1 with `grayscale`.
"""

from pathlib import Path

import numpy as np

from udc.errors import BadDatasetError, ConfigError, DatasetNotFoundError

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEST_FRACTION = 0.1
TEST_SEED = 0
_LAYOUT = ("a folder with one subfolder of images per class, or train/ and test/ folders that each hold such "
           "class subfolders")


def class_folders(folder: Path) -> list[Path]:
    """The class folders of `folder` in label order; hidden folders (editors', notebooks') are no classes."""
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(found) < 2:
        names = ", ".join(p.name for p in found) or "none"
        raise BadDatasetError(f"{folder} has {len(found)} class folder(s) ({names}), at least 2 are needed; "
                              f"put each class's images in its own subfolder, e.g. {folder / 'person'} and "
                              f"{folder / 'no_person'}")
    return found


def image_files(class_folder: Path, held_out: bool = False) -> list[Path]:
    """The images of one class folder, in sorted order: at least one, or two when a test image is `held_out`."""
    files = sorted(p for p in class_folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) < 1 + held_out:
        need = "two are needed (one to train on, one held out for testing)" if held_out else "one is needed"
        raise BadDatasetError(f"class folder {class_folder} holds {len(files)} image(s) ({', '.join(IMAGE_SUFFIXES)}), "
                              f"at least {need}; add images to it or remove the folder")
    return files


def decode(path: Path, image_size: tuple, channels: int) -> np.ndarray:
    """The image in `path` resized to `image_size`, uint8 (H, W, channels); BadDatasetError naming a bad file."""
    from udc.compat import tf

    try:
        image = tf.io.decode_image(path.read_bytes(), channels=channels, expand_animations=False)
    except OSError as e:
        raise BadDatasetError(f"cannot read {path} ({e.strerror}); make it readable or delete it") from None
    except tf.errors.InvalidArgumentError as e:
        reason = e.message.split("}}")[-1].split(" [Op:")[0].strip()  # TF's own text, without its op names
        raise BadDatasetError(f"{path} is not a readable image ({reason}); replace it or delete it") from None
    resized = tf.image.resize(image, image_size, method="bilinear")
    return tf.saturate_cast(tf.round(resized), tf.uint8).numpy()


def read_split(folders: list[Path], image_size: tuple, channels: int, held_out: bool = False):
    """(images (N, H, W, C) uint8, labels (N,) int32) of the class folders `folders`, label i for folders[i]."""
    files = [image_files(folder, held_out) for folder in folders]
    labels = np.concatenate([np.full(len(f), label, np.int32) for label, f in enumerate(files)])
    images = np.stack([decode(path, image_size, channels) for f in files for path in f])
    return images, labels


def held_out_test(labels: np.ndarray, fraction: float = TEST_FRACTION, seed: int = TEST_SEED) -> np.ndarray:
    """A mask of `fraction` of each class's examples (at least one): the same labels give the same mask."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        is_test[rng.permutation(members)[:max(1, round(len(members) * fraction))]] = True
    return is_test


def checked_image_size(image_size) -> tuple:
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise ConfigError(f"--config.image_size must be (height, width) in pixels, e.g. '(96,96)', got {image_size!r}")
    return size


def read_image_folder(data_dir, image_size=(96, 96), grayscale=False):
    """(x_train, y_train, x_test, y_test, class_names, source) of the image folder `data_dir` (see the module)."""
    size = checked_image_size(image_size)
    if not data_dir:
        raise DatasetNotFoundError(f"dataset 'image_folder' needs --config.data_dir: {_LAYOUT}")
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetNotFoundError(f"dataset 'image_folder': {root} is not a folder; point --config.data_dir at {_LAYOUT}")
    channels = 1 if grayscale else 3
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() != test_dir.is_dir():
        have, lack = (train_dir, test_dir) if train_dir.is_dir() else (test_dir, train_dir)
        raise BadDatasetError(f"{root} has {have.name}/ but no {lack.name}/ folder; add {lack} with the same class "
                              f"folders, or put the class folders directly in {root} to hold out "
                              f"{TEST_FRACTION:.0%} for testing")
    if train_dir.is_dir():
        train_classes, test_classes = class_folders(train_dir), class_folders(test_dir)
        names, test_names = [p.name for p in train_classes], [p.name for p in test_classes]
        if names != test_names:
            only_train = ", ".join(sorted(set(names) - set(test_names))) or "none"
            only_test = ", ".join(sorted(set(test_names) - set(names))) or "none"
            raise BadDatasetError(f"{train_dir} and {test_dir} hold different class folders (only in train: "
                                  f"{only_train}; only in test: {only_test}); give both the same class folders")
        x_train, y_train = read_split(train_classes, size, channels)
        x_test, y_test = read_split(test_classes, size, channels)
    else:
        classes = class_folders(root)
        names = [p.name for p in classes]
        images, labels = read_split(classes, size, channels, held_out=True)
        is_test = held_out_test(labels)
        x_train, y_train, x_test, y_test = images[~is_test], labels[~is_test], images[is_test], labels[is_test]
    return x_train, y_train, x_test, y_test, names, f"{root} (classes: {', '.join(names)})"
