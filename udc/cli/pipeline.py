"""udc-run: the whole path from a config to a measured int8 .tflite.

Trains the float backbone (resuming an interrupted run), exports it for the config's
accelerator and prints the report. Files land in --workdir.
"""

from absl import flags

from udc.cli.common import loaded_config, run_binary
from udc.cli.flags import define_accelerator_flag, define_config_flag, define_workdir_flag

_CONFIG = define_config_flag()
_WORKDIR = define_workdir_flag()
_ACCELERATOR = define_accelerator_flag()
flags.mark_flags_as_required(["config"])


def main(argv):
    del argv
    from udc.data import load_splits
    from udc.targets import target_of
    from udc.workdir_lock import workdir_lock
    from udc.workflows.config_counts import check_counts

    config = loaded_config(_CONFIG)
    # An unknown accelerator, bad counts, a bad dataset and a busy or unwritable workdir are refused before
    # TensorFlow's start-up.
    target_of(config, _ACCELERATOR.value)
    check_counts(config, "train")
    splits = load_splits(config)
    with workdir_lock(_WORKDIR.value):  # held for the run (the training takes it again: the lock is re-entrant)
        from udc.report.model_report import to_markdown
        from udc.workflows.pipeline import export_from_config, train_and_save

        model, splits = train_and_save(config, _WORKDIR.value, splits=splits)
        report = export_from_config(model, splits, config, _WORKDIR.value, "model", _ACCELERATOR.value)
    print(to_markdown(report))


def run():
    run_binary("udc-run", main)
