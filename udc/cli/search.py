"""udc-search: from a config to a searched, fine-tuned int8 .tflite and its report, in one command.

    udc-search --config=configs/fashion_mnist.py --config.budget_kb=12 --config.accelerator=ethos-u55-128
    udc-search --config=configs/fashion_mnist.py --config.budget_kb=24 --config.budget_cycles=120000

`budget_cycles` adds a latency budget in NPU cycles (Vela's estimate for the target; or
`budget_ms`, milliseconds at the clock of the target's system config): the
search steers the expected cycles of its cycle model as it steers the bytes, selection
fits both, and Vela checks both on the export (a cycle budget it measures exceeded stops
with the fix named; there is no cycle repair).

Trains the supernet (or reuses the one in --config.search.supernet), searches its choices
under the budget, ships the most accurate candidate that fits, strips it, fine-tunes it
with QAT and exports it (LiteRT, Vela, TFLite Micro); an export Vela measures over the
budget is pruned and briefly recovered until it fits. Progress per epoch; checkpoints
in --workdir each epoch, and a rerun with the same --workdir resumes (or, once the
export finished, prints its report and stops).
"""

from absl import flags

from udc.cli.common import loaded_config, run_binary
from udc.cli.flags import define_config_flag, define_workdir_flag

_CONFIG = define_config_flag()
_WORKDIR = define_workdir_flag("runs/search")
flags.mark_flags_as_required(["config"])


def main(argv):
    del argv
    from udc.data import load_splits
    from udc.errors import ConfigError
    from udc.workflows.config_counts import check_counts

    config = loaded_config(_CONFIG)
    if "search" not in config:
        raise ConfigError("the config has no 'search' section; start from configs/fashion_mnist.py")
    check_counts(config, "search")  # before TensorFlow's start-up, as is a bad dataset
    splits = load_splits(config)
    from udc.workflows.pipeline import search_and_export

    search_and_export(config, _WORKDIR.value, splits=splits)
    print(f"wrote {_WORKDIR.value}/model.tflite, arch_spec.json and report.md")


def run():
    run_binary("udc-search", main)
