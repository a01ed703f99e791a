"""Bad datasets and bad overrides: one line on stderr, exit status 1, nothing written.

Run as a user does (`udc-train`/`udc-search` in a subprocess) on small IDX files made
here; `...` stands for the temporary directory. Each case prints exactly this line
(`<what is wrong>; <what to do>`) and leaves the workdir absent or empty:

Dataset files (--config.dataset=mnist --config.data_dir=..., or $UDC_DATA_DIR):

* truncated .gz (fashion_mnist from $UDC_DATA_DIR):
  `udc-train: error: .../train-images-idx3-ubyte.gz is truncated (2048 of 15696 bytes once
  decompressed); re-download or re-install it, e.g. sudo apt-get install --reinstall dataset-fashion-mnist`
* truncated plain IDX:
  `udc-train: error: .../train-images-idx3-ubyte is truncated (7000 of 15696 bytes); replace it
  with a complete copy, or delete it and pass --config.download=True`
* wrong magic number:
  `udc-train: error: .../t10k-labels-idx1-ubyte is not an IDX file (bad magic number); replace it ...`
* a labels file given as the images:
  `udc-train: error: .../train-images-idx3-ubyte holds a 1-dimensional array (20,), expected 3
  dimensions (is it the right file?); replace it ...`
* fewer labels than images:
  `udc-train: error: dataset 'mnist' in ...: 20 training images but 15 training labels;
  re-download the dataset or replace its files there with a matching set`
* a label out of range (through udc-search):
  `udc-search: error: dataset 'mnist' in ...: 1 of 10 test labels are outside 0..9
  (num_classes 10), e.g. 12; re-download the dataset or replace its files there with a matching set`

Overrides:

* `--config.search.bits=abc`: `udc-search: error: bit-width 'abc' is not valid;
  --config.search.bits must be integers from 2 to 8, e.g. --config.search.bits='(2,4,8)'`
* `--config.search.widths='(8,12)'`: `udc-search: error: width 12 is not a multiple of the
  target's channel alignment 8; use multiples of 8 in --config.search.widths`
* `--config.search.bits='2 4'`: `udc-search: error: --config.search.bits takes a tuple with
  commas between its entries, not '2 4'; e.g. --config.search.bits='(2,3,4,5,6,8)'`
* `--config.train.epochs=abc`: `udc-train: error: --config.train.epochs takes an integer,
  not 'abc'; e.g. --config.train.epochs=10`
* `--config.budget_kb=abc`: `udc-search: error: --config.budget_kb takes a number, not 'abc';
  e.g. --config.budget_kb=4.0`
* `--config.seed=1.5`: `udc-train: error: --config.seed takes an integer, not '1.5'; e.g. --config.seed=0`
* `--config.download=maybe`: `udc-train: error: --config.download takes True or False, not
  'maybe'; e.g. --config.download=False`
* `--config.search.training=bogus`: `udc-search: error: unknown search.training 'bogus'; choose
  one of: sandwich, soft in --config.search.training`
* `--config.search.relaxation=hard`: `udc-search: error: unknown search.relaxation 'hard'; choose
  one of: gumbel_softmax, straight_through, relaxed_then_straight_through in
  --config.search.relaxation`

The in-process tests below check the same rules on `read_idx`, `RawDataset` (every
loader's output passes `check_dataset`), `make_splits` and the search option lists.
"""

import gzip
import zlib

import numpy as np
import pytest

from cli_helpers import DIGITS, assert_user_error, half_written, udc
from udc.data import RawDataset, load_raw, make_splits
from udc.data.idx import IdxFormatError, read_idx, write_idx
from udc.errors import BadDatasetError, ConfigError
from udc.space import SearchOptions

N_TRAIN, N_TEST = 20, 10
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
IMAGES_BYTES = 16 + N_TRAIN * 28 * 28  # IDX header of a 3-D array, then the pixels


def write_mnist(directory, gz=False, **arrays):
    """The four MNIST IDX files of a small valid dataset; `arrays` replaces some (by file stem)."""
    rng = np.random.default_rng(0)
    files = {TRAIN_IMAGES: rng.integers(0, 256, (N_TRAIN, 28, 28)), TRAIN_LABELS: np.arange(N_TRAIN) % 10,
             TEST_IMAGES: rng.integers(0, 256, (N_TEST, 28, 28)), TEST_LABELS: np.arange(N_TEST) % 10}
    files.update(arrays)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in files.items():
        write_idx(directory / (stem + (".gz" if gz else "")), array)
    return directory


def cut(path, size):
    path.write_bytes(path.read_bytes()[:size])


def truncated_gz(directory):
    """The training images' .gz cut after 2048 decompressed bytes, as a download cut short."""
    path = write_mnist(directory, gz=True) / f"{TRAIN_IMAGES}.gz"
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)  # 16: with the gzip header
    path.write_bytes(compressor.compress(gzip.decompress(path.read_bytes())[:2048])
                     + compressor.flush(zlib.Z_SYNC_FLUSH))


def truncated_plain(directory):
    cut(write_mnist(directory) / TRAIN_IMAGES, 7000)


def wrong_magic(directory):
    (write_mnist(directory) / TEST_LABELS).write_bytes(b"\x1f\x8b\x08\x00 a renamed file")


def labels_as_images(directory):
    write_mnist(directory, **{TRAIN_IMAGES: np.arange(N_TRAIN) % 10})


def fewer_labels(directory):
    write_mnist(directory, **{TRAIN_LABELS: np.arange(N_TRAIN - 5) % 10})


def label_out_of_range(directory):
    write_mnist(directory, **{TEST_LABELS: np.r_[np.arange(N_TEST - 1) % 10, 12]})


MNIST_FIX = "replace it with a complete copy, or delete it and pass --config.download=True"
MATCHING_SET = "re-download the dataset or replace its files there with a matching set"


@pytest.mark.parametrize("binary, dataset, make, fragments", [
    ("train", "fashion_mnist", truncated_gz,
     (f"{TRAIN_IMAGES}.gz is truncated (2048 of {IMAGES_BYTES} bytes once decompressed)",
      "re-download or re-install it, e.g. sudo apt-get install --reinstall dataset-fashion-mnist")),
    ("train", "mnist", truncated_plain, (f"{TRAIN_IMAGES} is truncated (7000 of {IMAGES_BYTES} bytes)", MNIST_FIX)),
    ("train", "mnist", wrong_magic, (f"{TEST_LABELS} is not an IDX file (bad magic number)", MNIST_FIX)),
    ("train", "mnist", labels_as_images,
     (f"{TRAIN_IMAGES} holds a 1-dimensional array ({N_TRAIN},), expected 3 dimensions", MNIST_FIX)),
    ("train", "mnist", fewer_labels, (f"{N_TRAIN} training images but {N_TRAIN - 5} training labels", MATCHING_SET)),
    ("search", "mnist", label_out_of_range, ("1 of 10 test labels are outside 0..9", "e.g. 12", MATCHING_SET)),
], ids=["truncated-gz", "truncated-plain", "wrong-magic", "labels-as-images", "fewer-labels",
        "label-out-of-range"])
def test_bad_dataset_files(tmp_path, binary, dataset, make, fragments):
    data, workdir = tmp_path / "data", tmp_path / "work"
    make(data)
    args = [f"--config={DIGITS}", f"--config.dataset={dataset}", f"--workdir={workdir}"]
    if dataset == "fashion_mnist":  # found through $UDC_DATA_DIR, before the Debian package
        env = {"UDC_DATA_DIR": str(data)}
    else:
        env, args = {}, [*args, f"--config.data_dir={data}"]
    line = assert_user_error(udc(binary, *args, env=env), f"udc-{binary}: error: ", *fragments)
    assert str(data) in line
    assert not workdir.exists(), sorted(workdir.rglob("*"))
    assert half_written(workdir) == []


@pytest.mark.parametrize("binary, override, fragments", [
    ("search", "--config.search.bits=abc",
     ("bit-width 'abc' is not valid", "--config.search.bits must be integers from 2 to 8",
      "e.g. --config.search.bits='(2,4,8)'")),
    ("search", "--config.search.widths=(8,12)",
     ("width 12 is not a multiple of the target's channel alignment 8", "in --config.search.widths")),
    ("search", "--config.search.bits=2 4",
     ("--config.search.bits takes a tuple with commas between its entries, not '2 4'",
      "e.g. --config.search.bits='(2,3,4,5,6,8)'")),
    ("train", "--config.train.epochs=abc", ("--config.train.epochs takes an integer, not 'abc'",
                                            "e.g. --config.train.epochs=10")),
    ("search", "--config.budget_kb=abc", ("--config.budget_kb takes a number, not 'abc'", "e.g. --config.budget_kb=4.0")),
    ("train", "--config.seed=1.5", ("--config.seed takes an integer, not '1.5'", "e.g. --config.seed=0")),
    ("train", "--config.download=maybe", ("--config.download takes True or False, not 'maybe'",)),
    ("search", "--config.search.training=bogus",
     ("unknown search.training 'bogus'; choose one of: sandwich, soft in --config.search.training",)),
    ("search", "--config.search.relaxation=hard",
     ("unknown search.relaxation 'hard'; choose one of: gumbel_softmax, straight_through, "
      "relaxed_then_straight_through in --config.search.relaxation",)),
], ids=["bits=abc", "widths=(8,12)", "bits=2 4", "epochs=abc", "budget_kb=abc", "seed=1.5", "download=maybe",
        "training=bogus", "relaxation=hard"])
def test_bad_overrides(tmp_path, binary, override, fragments):
    workdir = tmp_path / "work"
    assert_user_error(udc(binary, f"--config={DIGITS}", f"--workdir={workdir}", override),
                      f"udc-{binary}: error: ", *fragments)
    assert not workdir.exists(), sorted(workdir.rglob("*"))


# ---------------------------------------------------------------- in process

def test_truncated_gz_that_lacks_only_its_trailer(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((3, 2, 2)))
    cut(path, len(path.read_bytes()) - 4)
    with pytest.raises(IdxFormatError, match=r"x.gz is truncated \(its gzip stream lacks its end\)"):
        read_idx(path)


@pytest.mark.parametrize("content, match", [
    (b"", r"truncated \(0 bytes, shorter than its IDX header\)"),
    (bytes([0, 0, 8, 3, 0, 0]), r"truncated \(6 bytes, shorter than its IDX header\)"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 7, 7]), r"longer than its IDX header says \(11 instead of 10 bytes\)"),
], ids=["empty", "cut-in-header", "trailing-bytes"])
def test_idx_damage(tmp_path, content, match):
    (tmp_path / "x").write_bytes(content)
    with pytest.raises(IdxFormatError, match=match):
        read_idx(tmp_path / "x")


def test_corrupt_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    with pytest.raises(IdxFormatError, match="x.gz is not a valid gzip file"):
        read_idx(tmp_path / "x.gz")


def test_loader_names_the_file_and_the_fix(tmp_path):
    truncated_plain(tmp_path)
    with pytest.raises(BadDatasetError, match=f"{TRAIN_IMAGES} is truncated .*; {MNIST_FIX}"):
        load_raw("mnist", data_dir=tmp_path)


def test_a_corrupt_keras_mnist_cache_is_named(tmp_path, monkeypatch):
    from udc.data import loaders

    cache = tmp_path / "keras"
    cache.mkdir()
    (cache / "mnist.npz").write_bytes(b"PK\x03\x04 cut short")
    monkeypatch.setattr(loaders, "KERAS_CACHE", cache)
    monkeypatch.setattr(loaders, "DEBIAN_DATASETS", tmp_path / "none")
    monkeypatch.delenv("UDC_DATA_DIR", raising=False)
    with pytest.raises(BadDatasetError, match=r"mnist.npz \(Keras' MNIST cache\) is corrupt .*delete it"):
        load_raw("mnist")


def raw(**changes):
    """A valid 8x8 dataset built in code, with `changes` applied."""
    arrays = dict(x_train=np.zeros((6, 8, 8, 1), np.uint8), y_train=np.arange(6, dtype=np.int32) % 3,
                  x_test=np.zeros((4, 8, 8, 1), np.uint8), y_test=np.arange(4, dtype=np.int32) % 3, num_classes=3)
    return RawDataset("toy", **{**arrays, **changes})


@pytest.mark.parametrize("changes, match", [
    (dict(y_train=np.zeros(5, np.int32)), "6 training images but 5 training labels"),
    (dict(y_test=np.array([0, 1, 3, -1], np.int32)), r"2 of 4 test labels are outside 0..2 \(num_classes 3\), e.g. 3"),
    (dict(y_train=np.zeros(6, np.float32)), "the training labels are of type float32, expected integers"),
    (dict(x_test=np.full((4, 8, 8, 1), np.nan, np.float32)), "the test images hold NaN or infinite values"),
    (dict(x_train=np.zeros((6, 8, 8), np.uint8)), r"the training images have shape \(6, 8, 8\), expected \(N, H, W, C\)"),
    (dict(y_test=np.zeros((4, 1), np.int32)), r"the test labels have shape \(4, 1\), expected \(N,\)"),
    (dict(x_test=np.zeros((4, 8, 9, 1), np.uint8)), "the training images are 8x8x1 \\(HxWxC\\) but the test images 8x9x1"),
    (dict(x_train=np.zeros((0, 8, 8, 1), np.uint8), y_train=np.zeros(0, np.int32)), "the training split is empty"),
    (dict(x_train=np.full((6, 8, 8, 1), "a")), "the training images are of type <U1, expected numbers"),
    (dict(num_classes=0), "num_classes must be a positive integer, got 0"),
], ids=["label-count", "label-range", "float-labels", "nan-images", "3d-images", "2d-labels", "hwc-mismatch",
        "empty-train", "string-images", "no-classes"])
def test_every_dataset_is_checked_as_it_is_built(changes, match):
    with pytest.raises(BadDatasetError, match=f"dataset 'toy': {match}.*; fix the loader that builds it") as info:
        raw(**changes)
    assert "\n" not in str(info.value)


def test_a_valid_dataset_passes_with_an_empty_validation_split():
    splits = make_splits(raw(), val_fraction=0.0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 0, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(val_fraction=1.0), r"val_fraction 1.0 is outside \[0, 1\).*--config.val_fraction"),
    (dict(val_fraction=float("nan")), r"val_fraction nan is outside \[0, 1\)"),
    (dict(max_train=-1), "max_train_examples -1 is negative.*--config.max_train_examples"),
    (dict(max_test=-2), "max_test_examples -2 is negative.*--config.max_test_examples"),
    (dict(val_fraction=0.95), "val_fraction 0.95 leaves none of the 6 training examples to train on"),
], ids=["val_fraction=1", "val_fraction=nan", "max_train<0", "max_test<0", "no-train-left"])
def test_bad_split_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_splits(raw(), **kwargs)


@pytest.mark.parametrize("key, values, match", [
    ("bits", ("abc",), r"bit-width 'abc' is not valid; --config.search.bits must be integers from 2 to 8"),
    ("bits", (2, "x"), r"bit-width 'x' is not valid"),
    ("bits", (2, True), r"bit-width True is not valid"),
    ("sparsities", ("abc",), r"sparsity 'abc' is not valid; --config.search.sparsities must be fractions in \[0, 1\)"),
    ("widths", ("a", 8), r"width 'a' is not valid; --config.search.widths must be positive integers"),
    ("widths", (8, float("inf")), r"width inf is not valid"),
], ids=["bits=abc", "bits=(2,x)", "bits=(2,True)", "sparsities=abc", "widths=(a,8)", "widths=(8,inf)"])
def test_search_options_name_the_real_override(key, values, match):
    with pytest.raises(ConfigError, match=match) as info:
        SearchOptions(**{key: values})
    assert "\n" not in str(info.value) and f"e.g. --config.search.{key}='(" in str(info.value)
