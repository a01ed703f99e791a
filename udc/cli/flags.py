"""Flags shared by the udc binaries (official/-style: defined once, reused)."""

from absl import flags
from ml_collections import config_flags


def define_config_flag():
    return config_flags.DEFINE_config_file(
        "config", None, "ml_collections config file, e.g. configs/fashion_mnist.py; "
        "override keys with --config.key=value.", lock_config=True)


def define_workdir_flag(default="runs/fashion_mnist"):
    return flags.DEFINE_string("workdir", default, "Where the model, checkpoints and reports go.")


def define_accelerator_flag():
    return flags.DEFINE_string(
        "accelerator", None, "Ethos-U configuration for Vela, e.g. ethos-u55-128 "
        "(default: the config's export.accelerator).")
