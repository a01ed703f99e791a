"""A user's image folders (udc.data.image_folders), on small PNG and JPEG files made here.

Each PNG is one colour, (value, 255 - value, 7), so that it survives resizing and names the image it came from.
"""

import shutil

import ml_collections
import numpy as np
import pytest

from udc.compat import tf
from udc.data import load_raw, load_splits
from udc.errors import BadDatasetError, ConfigError, DatasetNotFoundError


def _write_image(path, value: int, height: int = 12, width: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.broadcast_to(np.array([value, 255 - value, 7], np.uint8), (height, width, 3))
    encode = tf.io.encode_png if path.suffix == ".png" else tf.io.encode_jpeg
    path.write_bytes(encode(image).numpy())


def _write_classes(folder, counts: dict, first_value: int = 0) -> None:
    """counts[name] one-colour PNGs in folder/name, of values first_value + 20 * (class in sorted order) + index."""
    for label, name in enumerate(sorted(counts)):
        for i in range(counts[name]):
            _write_image(folder / name / f"{i:02d}.png", first_value + 20 * label + i)


def _raises_one_line(error_type, pattern, **loader_arguments):
    with pytest.raises(error_type, match=pattern) as error:
        load_raw("image_folder", **loader_arguments)
    assert "\n" not in str(error.value)


def test_train_and_test_folders_are_the_two_splits_with_labels_in_sorted_folder_order(tmp_path):
    counts = {"zebra": 3, "ant": 2, "mole": 4}  # labels: ant 0, mole 1, zebra 2
    _write_classes(tmp_path / "train", counts)
    _write_classes(tmp_path / "test", {name: 2 for name in counts}, first_value=100)
    _write_image(tmp_path / "train" / "ant" / "more" / "wide.jpg", 200, height=30, width=60)  # nested, JPEG
    (tmp_path / "train" / "mole" / "notes.txt").write_text("not an image: skipped, as Keras does")
    raw = load_raw("image_folder", data_dir=tmp_path, image_size=(8, 6))
    assert raw.x_train.shape == (10, 8, 6, 3) and raw.x_test.shape == (6, 8, 6, 3)
    assert raw.x_train.dtype == np.uint8 and raw.y_train.dtype == np.int32 and raw.num_classes == 3
    assert raw.y_train.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2] and raw.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    assert raw.source == f"{tmp_path} (classes: ant, mole, zebra)"
    pngs = np.delete(raw.x_train, 2, axis=0)  # the JPEG sorts third: ant/more/wide.jpg after ant/01.png
    np.testing.assert_array_equal(pngs, np.broadcast_to(
        np.stack([[v, 255 - v, 7] for v in (0, 1, 20, 21, 22, 23, 40, 41, 42)]).astype(np.uint8)[:, None, None],
        (9, 8, 6, 3)))
    assert np.abs(raw.x_train[2, 4, 3].astype(int) - [200, 55, 7]).max() <= 3  # JPEG is lossy
    assert raw.x_test[:, 0, 0, 0].tolist() == [100, 101, 120, 121, 140, 141]


def test_image_size_and_grayscale_reach_the_loader_from_a_config(tmp_path):
    _write_classes(tmp_path, {"no_person": 10, "person": 10})
    config = ml_collections.ConfigDict({
        "dataset": "image_folder", "data_dir": str(tmp_path), "download": False, "val_fraction": 0.25, "seed": 0,
        "max_train_examples": 0, "max_test_examples": 0, "image_size": (5, 7), "grayscale": True})
    splits = load_splits(config)
    assert splits.input_shape == (5, 7, 1) and splits.num_classes == 2
    assert (len(splits.train), len(splits.val), len(splits.test)) == (14, 4, 2)
    gray = round(0.2989 * 0 + 0.587 * 255 + 0.114 * 7)  # image 0 of no_person: (0, 255, 7)
    assert abs(splits.test.x[0, 0, 0, 0] * 255 - gray) <= 1
    config.dataset = "digits"  # a loader without these options ignores them
    assert load_splits(config).input_shape == (8, 8, 1)


def test_one_folder_per_class_holds_out_a_stratified_tenth_the_same_each_time(tmp_path):
    _write_classes(tmp_path, {"a": 20, "b": 6})
    first = load_raw("image_folder", data_dir=tmp_path, image_size=(4, 4))
    again = load_raw("image_folder", data_dir=tmp_path, image_size=(4, 4))
    assert first.y_test.tolist() == [0, 0, 1]  # 10 % of 20, and at least one of 6
    assert first.y_train.tolist() == [0] * 18 + [1] * 5
    for a, b in ((first.x_train, again.x_train), (first.x_test, again.x_test)):
        np.testing.assert_array_equal(a, b)
    train_values, test_values = set(first.x_train[:, 0, 0, 0]), set(first.x_test[:, 0, 0, 0])
    assert not train_values & test_values and len(train_values | test_values) == 26


def test_a_missing_folder_says_how_to_give_one(tmp_path):
    _raises_one_line(DatasetNotFoundError, r"^dataset 'image_folder' needs --config.data_dir: a folder with one "
                     r"subfolder of images per class", data_dir=None)
    _raises_one_line(DatasetNotFoundError, rf"^dataset 'image_folder': {tmp_path / 'nowhere'} is not a folder; "
                     r"point --config.data_dir at", data_dir=tmp_path / "nowhere")


def test_a_bad_class_layout_is_named(tmp_path):
    _write_classes(tmp_path, {"cat": 3})
    _raises_one_line(BadDatasetError, rf"^{tmp_path} has 1 class folder\(s\) \(cat\), at least 2 are needed; "
                     r"put each class's images in its own subfolder", data_dir=tmp_path)
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("no images here")
    _raises_one_line(BadDatasetError, rf"^class folder {tmp_path / 'dog'} holds 0 image\(s\) \(.bmp, .gif, .jpeg, "
                     r".jpg, .png\), at least two are needed \(one to train on, one held out for testing\); add "
                     r"images to it or remove the folder", data_dir=tmp_path)
    _write_image(tmp_path / "dog" / "only.png", 9)
    _raises_one_line(BadDatasetError, rf"^class folder {tmp_path / 'dog'} holds 1 image\(s\) .*at least two are "
                     r"needed", data_dir=tmp_path)


def test_train_and_test_folders_must_both_be_there_with_the_same_classes(tmp_path):
    _write_classes(tmp_path / "train", {"cat": 2, "dog": 2})
    _raises_one_line(BadDatasetError, rf"^{tmp_path} has train/ but no test/ folder; add {tmp_path / 'test'} with "
                     rf"the same class folders, or put the class folders directly in {tmp_path}", data_dir=tmp_path)
    _write_classes(tmp_path / "test", {"cat": 1, "cow": 1, "dog": 1, "eel": 1})
    _raises_one_line(BadDatasetError, rf"^{tmp_path / 'train'} and {tmp_path / 'test'} hold different class folders "
                     r"\(only in train: none; only in test: cow, eel\); give both the same", data_dir=tmp_path)
    for name in ("cow", "eel"):
        shutil.rmtree(tmp_path / "test" / name)
    (tmp_path / "test" / "dog" / "00.png").unlink()  # a test folder may hold a single image, but not none
    _raises_one_line(BadDatasetError, rf"^class folder {tmp_path / 'test' / 'dog'} holds 0 image\(s\) .*, at least "
                     r"one is needed; add images to it or remove the folder", data_dir=tmp_path)


@pytest.mark.parametrize("name, content, reason", [
    ("cut.png", "half a PNG", "Invalid PNG data"),
    ("cut.jpg", "half a JPEG", "Invalid JPEG data"),
    ("empty.png", b"", "Input is empty"),
    ("text.jpeg", b"plain text", "Unknown image file format"),
])
def test_a_damaged_image_is_named(tmp_path, name, content, reason):
    _write_classes(tmp_path, {"cat": 2, "dog": 2})
    if isinstance(content, str):  # half of a good file of that format
        _write_image(tmp_path / "dog" / name, 50)
        content = (tmp_path / "dog" / name).read_bytes()[:60]
    (tmp_path / "dog" / name).write_bytes(content)
    _raises_one_line(BadDatasetError, rf"^{tmp_path / 'dog' / name} is not a readable image \(.*{reason}.*\); "
                     r"replace it or delete it$", data_dir=tmp_path)


@pytest.mark.parametrize("image_size", [(96,), (0, 96), (96.0, 96), "96x96"])
def test_an_image_size_that_is_not_height_and_width_is_refused(tmp_path, image_size):
    with pytest.raises(ConfigError, match=r"^--config.image_size must be \(height, width\) in pixels"):
        load_raw("image_folder", data_dir=tmp_path, image_size=image_size)
