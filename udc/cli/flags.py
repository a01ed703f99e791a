"""Flags shared by the udc binaries (official/-style: defined once, reused)."""

from absl import flags
from ml_collections import config_flags

from udc.errors import ConfigError


def define_config_flag(default=None):
    return config_flags.DEFINE_config_file(
        "config", default, "ml_collections config file, e.g. configs/fashion_mnist.py; "
        "override keys with --config.key=value.", lock_config=True)


def define_workdir_flag(default="runs/fashion_mnist"):
    return flags.DEFINE_string("workdir", default, "Where the model, checkpoints and reports go.")


def define_accelerator_flag():
    return flags.DEFINE_string(
        "accelerator", None, "Ethos-U configuration for Vela, e.g. ethos-u55-128 "
        "(default: the config's export.accelerator).")


def define_budgets_flag(default):
    return flags.DEFINE_list("budgets_kb", default, "UDC budgets in KiB of Vela-encoded weights.")


def budgets_kb(flag) -> list:
    """The values of a list flag of budgets (--budgets_kb) as floats (ConfigError for a non-number)."""
    try:
        return [float(b) for b in flag.value]
    except ValueError:
        raise ConfigError(f"--{flag.name} must be numbers in KiB, got {','.join(flag.value)}") from None
