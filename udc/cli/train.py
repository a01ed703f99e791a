"""udc-train: train the float backbone of a config and save it as WORKDIR/model.keras."""

from absl import flags

from udc.cli.common import loaded_config, run_binary
from udc.cli.flags import define_config_flag, define_workdir_flag

_CONFIG = define_config_flag()
_WORKDIR = define_workdir_flag()
flags.mark_flags_as_required(["config"])


def main(argv):
    del argv
    from udc.data import load_splits
    from udc.workdir_lock import workdir_lock
    from udc.workflows.config_counts import check_counts

    config = loaded_config(_CONFIG)
    # Bad counts, a bad dataset and a busy or unwritable workdir are refused before TensorFlow's start-up.
    check_counts(config, "train")
    splits = load_splits(config)
    with workdir_lock(_WORKDIR.value):  # held for the run (the training takes it again: the lock is re-entrant)
        from udc.workflows.pipeline import train_and_save

        train_and_save(config, _WORKDIR.value, splits=splits)


def run():
    run_binary("udc-train", main)
