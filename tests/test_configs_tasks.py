"""The task configs of issue 13: keyword spotting (configs/kws_ds_cnn.py), visual wake words
(configs/vww_mobilenet.py) and ResNet-8 on Fashion-MNIST (configs/fashion_mnist_resnet8.py).

Each loads as the binaries' --config flag loads it, names its backbone and dataset, and its backbone builds for
its data: a tiny synthetic keyword set (generated in this module's $XDG_CACHE_HOME, never ~/.cache) and a tiny
folder of generated images. udc-search runs the KWS config end to end on the tiny set under a byte and a cycle
budget.
"""

import json
import shutil

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from cli_helpers import ROOT, udc
from udc.compat import keras, tf
from udc.data import load_splits
from udc.models import build_backbone

CONFIGS = ROOT / "configs"
PER_WORD = 4  # utterances of each keyword in the tiny synthetic set: 2 train, 1 validation, 1 test
BASE_KEYS = ("accelerator", "budget_kb", "budget_cycles", "train", "search", "export", "augment")

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (install.sh installs it as root; "
                                         "sudo apt-get install espeak-ng)")


def load_config(name, *overrides):
    """configs/NAME as udc's binaries load their --config flag, with --config.key=value OVERRIDES."""
    argv = ["udc-test", f"--config={CONFIGS / name}", *overrides]
    values = flags.FlagValues()
    # The --config.key flags are made from the command line the flag is defined with (sys.argv by default).
    config_flags.DEFINE_config_file("config", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    return values.config


@pytest.fixture(scope="module")
def xdg_cache(tmp_path_factory):
    """$XDG_CACHE_HOME of this module's runs: the tiny synthetic set is generated here once, in-process and for
    the binaries alike."""
    return tmp_path_factory.mktemp("xdg_cache")


@pytest.fixture
def udc_cache(xdg_cache, monkeypatch):
    monkeypatch.setattr("udc.data.loaders.UDC_CACHE", xdg_cache / "udc")  # what $XDG_CACHE_HOME gives a binary
    return xdg_cache / "udc"


def write_images(folder, classes=("no_person", "person"), per_class=4):
    """per_class small PNGs of random colours in each class folder of `folder`."""
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
            (folder / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())


def assert_builds(config, splits):
    """The config's backbone, built for its data's shape and classes as a search builds it."""
    model = build_backbone(config.backbone, splits.input_shape, splits.num_classes)
    assert model.input_shape[1:] == splits.input_shape and model.output_shape == (None, splits.num_classes)
    return model


@needs_espeak
def test_kws_config_builds_ds_cnn_for_synthetic_keywords_and_reads_a_speech_commands_folder_the_same_way(udc_cache):
    config = load_config("kws_ds_cnn.py", f"--config.utterances_per_word={PER_WORD}")
    assert (config.backbone, config.dataset, config.accelerator) == ("ds_cnn", "synthetic_keywords", "ethos-u55-128")
    assert config.search.max_widths is None and config.search.budget_kb == config.budget_kb
    assert (config.augment.shift, config.augment.horizontal_flip) == (0, False)  # no flips or shifts of MFCCs
    splits = load_splits(config)
    assert splits.input_shape == (49, 10, 1) and splits.num_classes == 12
    model = assert_builds(config, splits)
    assert sum(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers) == 4

    # The docstring's way to real data: the synthetic set is in Speech Commands' layout, so it stands in for a copy.
    folder, = (udc_cache / "synthetic_keywords").iterdir()
    real = load_config("kws_ds_cnn.py", "--config.dataset=speech_commands", f"--config.data_dir={folder}")
    real_splits = load_splits(real)
    assert real_splits.input_shape == (49, 10, 1) and real_splits.num_classes == 12
    np.testing.assert_array_equal(real_splits.test.y, splits.test.y)


def test_vww_config_builds_mobilenet_v1_for_the_users_image_folder(tmp_path):
    write_images(tmp_path / "vww")
    config = load_config("vww_mobilenet.py", f"--config.data_dir={tmp_path / 'vww'}")
    assert (config.backbone, config.dataset, config.accelerator) == ("mobilenet_v1", "image_folder", "ethos-u55-128")
    assert config.augment.horizontal_flip
    splits = load_splits(config)
    assert splits.input_shape == (96, 96, 3) and splits.num_classes == 2
    model = assert_builds(config, splits)
    assert sum(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers) == 13

    write_images(tmp_path / "three", classes=("cat", "dog", "person"))  # any number of classes
    other = load_config("vww_mobilenet.py", f"--config.data_dir={tmp_path / 'three'}")
    assert assert_builds(other, load_splits(other)).output_shape == (None, 3)


def test_resnet8_config_is_the_fashion_mnist_one_with_another_backbone():
    config = load_config("fashion_mnist_resnet8.py", "--config.max_train_examples=64", "--config.max_test_examples=16")
    base = load_config("fashion_mnist.py")
    assert (config.backbone, config.dataset) == ("resnet8", "fashion_mnist")
    for key in BASE_KEYS:  # the same budgets, target and training: the two fronts compare backbones only
        assert config[key] == base[key], key
    model = assert_builds(config, load_splits(config))
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 3


# A few steps of each stage on the tiny set with a small supernet. Both budgets bind: its largest child takes
# 3,712 B and 27,826 cycles on the U55-128 by Vela, its fastest network 17,759 cycles.
BUDGET_KB, BUDGET_CYCLES = 2.0, 24000
TINY = (f"--config.utterances_per_word={PER_WORD}", "--config.search.max_widths=(16,16,16,16,16)",
        "--config.train.epochs=1", "--config.search.supernet_epochs=1", "--config.search.search_epochs=1",
        "--config.search.finetune_epochs=1", "--config.search.steps_per_epoch=4", "--config.search.candidates=2",
        "--config.search.batch_size=16", "--config.train.batch_size=16", "--config.export.num_calibration=32",
        "--config.export.tflm_samples=4", f"--config.budget_kb={BUDGET_KB}", f"--config.budget_cycles={BUDGET_CYCLES}",
        # One fine-tune epoch of a child this small moves its codes by a few %: aiming 5 % under the budget
        # spares the repairs of an export over it (each another export and Vela compile).
        "--config.search.budget_margin=0.05")


@pytest.mark.e2e
@needs_espeak
def test_udc_search_of_the_kws_config_meets_both_budgets_wholly_on_the_npu_with_depthwise_layers(xdg_cache,
                                                                                                 tmp_path):
    workdir = tmp_path / "kws"
    result = udc("search", f"--config={CONFIGS / 'kws_ds_cnn.py'}", *TINY, f"--workdir={workdir}",
                 env={"XDG_CACHE_HOME": str(xdg_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((workdir / "report.json").read_text())
    spec = json.loads((workdir / "arch_spec.json").read_text())
    vela, search = report["vela"], report["search"]
    assert vela["encoded_weight_bytes"] == search["vela_encoded_bytes"] <= BUDGET_KB * 1024 == search["budget_bytes"]
    assert vela["cycles"] == search["vela_cycles"] <= BUDGET_CYCLES and search["within_cycle_budget"]
    assert vela["npu_fraction"] == 1.0 and vela["cpu_ops"] == 0, vela["cpu_op_names"]
    assert report["tflite"]["operators"].count("DEPTHWISE_CONV_2D") == 4
    assert [layer["kind"] for layer in spec["layers"]].count("depthwise") == 4
