"""udc-ensemble: calibrate a flexible ensemble with early exit over .tflite classifiers.

  udc-ensemble --members a.tflite,b.tflite,c.tflite --accelerator ethos-u55-128 --max_drop 0.5
  udc-ensemble --config=configs/fashion_mnist.py --budgets_kb=6,12,24,48 --workdir=runs/ensemble --max_drop 0.5
  udc-ensemble --config=configs/fashion_mnist.py --budgets_kb=32,64 --supernet_seeds=1,2,3 --workdir=runs/ens \
      --config.search.finetune_epochs=6 --max_members 4 --max_cost_ratio 0.4
  udc-ensemble --config=configs/fashion_mnist.py --budgets_kb=8,32,64 --augmented_budgets_kb=64 \
      --supernet_seeds=1,3,5 --workdir=runs/ens --config.search.finetune_epochs=6 --max_members 4 ...

orders the members cheapest first (Vela cycles or host latency), sweeps the exit
thresholds on the validation split, picks the operating point for the goal and writes
ensemble.{json,md,png} and the deployment descriptor cascade.json to --output_dir.
The members are either given (--members), searched by UDC at each budget of the config
(--config with --budgets_kb; finished searches in --workdir are reused; --supernet_seeds
searches each budget on one supernet per seed, whose members pool better; --augmented_budgets_kb
also fine-tunes those budgets' searches again with augmentation, members that err unlike the
plain ones), or trained as fmnist_cnn at several width multipliers (--train_widths). Searched members pool far better
when fine-tuned longer than a single search's default: on Fashion-MNIST, six searches
fine-tuned 6 epochs instead of 2 (--config.search.finetune_epochs=6) raised their full
ensemble from +0.02 to +0.34 points above its best member
(benchmarks/fashion_mnist/ensemble_finetune6). With --config the splits are
the config's, the ones the searches held out. Given members read an image folder
(--dataset=image_folder --data_dir=...) at their own input size and channels.
"""

import math
import shlex
import sys

import udc  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from absl import flags

from udc.cli.common import loaded_config, run_binary
from udc.cli.flags import budgets_kb, define_budgets_flag, define_config_flag, define_workdir_flag
# numpy only: the flags are checked before TensorFlow loads
from udc.ensemble.calibration import check_goal, check_member_count
from udc.errors import UdcError

FLAGS = flags.FLAGS
PROG = "udc-ensemble"
DEFAULT_ACCELERATOR = "ethos-u55-128"
# The splits without --config; with it they are the config's.
DATA_FLAGS = ("dataset", "data_dir", "val_fraction", "seed", "max_train", "max_test")


def define_flags():
    if "members" in FLAGS:  # already defined (tests run the binary in-process)
        return
    flags.DEFINE_list("members", [], "Comma-separated member .tflite files (same inputs and classes).")
    define_config_flag()
    define_budgets_flag([])
    define_workdir_flag("runs/ensemble")
    flags.DEFINE_string("accelerator", None, "Ethos-U configuration for Vela cycles (default: the config's "
                        f"with --config, which the searches then use too, else {DEFAULT_ACCELERATOR}).")
    flags.DEFINE_float("max_drop", None, "Goal: lowest average cost within this many accuracy points "
                       "of the full ensemble (on validation).")
    flags.DEFINE_float("max_cost", None, "Goal: best accuracy at this average cost or less "
                       "(cycles for --cost=vela_cycles, ms for host_latency).")
    flags.DEFINE_float("max_cost_ratio", None, "Goal: best accuracy at this share of the full ensemble's average "
                       "cost or less (e.g. 0.4); instead of --max_cost.")
    flags.DEFINE_boolean("cheaper_than_flash_peer", False, "Goal: also cost less than the flash peer, the most "
                         "accurate single member (on validation) that fits in the flash the cascade's members take "
                         "together: the model a device could store instead.")
    flags.DEFINE_enum("rule", "max_prob", ["max_prob", "margin"], "Exit test: top probability or top-1 minus top-2.")
    flags.DEFINE_enum("combination", "log_linear", ["log_linear", "average"],
                      "How a stage combines its members: a log-linear pool fitted on validation (never less "
                      "accurate there than its best member), or the plain average.")
    flags.DEFINE_enum("cost", "vela_cycles", ["vela_cycles", "host_latency"], "Cost that orders members and is minimised.")
    flags.DEFINE_string("output_dir", None, "Where the report and cascade.json go "
                        "(default: --workdir with --config, else ensemble_out).")
    flags.DEFINE_string("dataset", "fashion_mnist", "Dataset for the validation and test splits (image_folder: read "
                        "at the members' input size and channels).")
    flags.DEFINE_string("data_dir", "", "Folder with the dataset files (default: the standard places).")
    flags.DEFINE_float("val_fraction", 0.1, "Fraction of the training set held out for validation.")
    flags.DEFINE_integer("seed", 0, "Seed of the train/validation split (use the members' training split).")
    flags.DEFINE_integer("max_train", 0, "Cut the training split (and validation in proportion); 0 = all.")
    flags.DEFINE_integer("max_test", 0, "Cut the test split; 0 = all.")
    flags.DEFINE_list("train_widths", [], "Instead of --members: train fmnist_cnn members at these width "
                      "multipliers (e.g. 0.25,0.5,1) on the training split, then calibrate.")
    flags.DEFINE_integer("epochs", 3, "Epochs per trained member (--train_widths).")
    flags.DEFINE_integer("latency_repeats", 50, "Batch-1 invocations timed per member for host latency.")
    flags.DEFINE_list("supernet_seeds", [], "With --config: train one supernet per seed (WORKDIR/seed_<S>) and "
                      "search each at every budget; members of separate supernets err more differently than budgets "
                      "of one. Empty: one supernet (the config's seed) in WORKDIR.")
    flags.DEFINE_list("augmented_budgets_kb", [], "With --config: each search at these budgets (of --budgets_kb) "
                      "is also fine-tuned again with the config's augmentation, in "
                      "WORKDIR[/seed_<S>]/udc_<K>kb_augmented, as one more member: members fine-tuned with and "
                      "without augmentation err differently.")
    flags.DEFINE_integer("augmented_finetune_epochs", 15, "Fine-tuning epochs of the augmented members (the "
                         "augmentation needs a longer schedule than the plain fine-tune to be as accurate).")
    flags.DEFINE_integer("max_members", 0, "Treat the members as a pool and cascade the at most this many that "
                         "best serve the cost range on validation (udc.ensemble.selection); 0: every member.")


def _member_source() -> str:
    """Which of --members, --config or --train_widths gives the members (one, and only one)."""
    given = [name for name, value in (("--members", FLAGS.members), ("--config", FLAGS["config"].present),
                                      ("--train_widths", FLAGS.train_widths)) if value]
    if len(given) > 1:
        raise UdcError(f"{' and '.join(given)} are alternatives; give the members one way only")
    if not given:
        raise UdcError("give the members: --members a.tflite,b.tflite,..., or --config=configs/fashion_mnist.py "
                       "--budgets_kb=6,12,24,48 to search them, or --train_widths 0.25,0.5,1")
    if FLAGS.budgets_kb and given[0] != "--config":
        raise UdcError("--budgets_kb needs --config: the budgets are searched on the config's task")
    if FLAGS.augmented_budgets_kb and given[0] != "--config":
        raise UdcError("--augmented_budgets_kb needs --config and --budgets_kb: it fine-tunes searches of the config "
                       "again")
    if FLAGS.supernet_seeds and given[0] != "--config":
        raise UdcError("--supernet_seeds needs --config and --budgets_kb: each seed's supernet is searched at the "
                       "budgets")
    if given[0] == "--config":
        if _searched_count() < 2:
            raise UdcError("--config needs at least two budgets, or one budget and two --supernet_seeds, to make a "
                           "cascade, e.g. --budgets_kb=6,12,24,48")
        overridden = [f"--{name}" for name in DATA_FLAGS if FLAGS[name].present]
        if overridden:
            raise UdcError(f"with --config the splits are the config's: drop {', '.join(overridden)} "
                           "(or override the config, e.g. --config.dataset=digits)")
    return given[0]


def _train_widths() -> list[float]:
    """--train_widths as positive numbers."""
    try:
        widths = [float(w) for w in FLAGS.train_widths]
    except ValueError:
        widths = [float("nan")]
    if not all(math.isfinite(w) and w > 0 for w in widths):
        raise UdcError(f"--train_widths must be positive width multipliers, got {','.join(FLAGS.train_widths)}; "
                       "e.g. --train_widths 0.25,0.5,1")
    return widths


def _searched_count() -> int:
    """How many members --budgets_kb and --supernet_seeds search (every budget on every supernet), with the
    augmented fine-tunes of --augmented_budgets_kb."""
    budgets = len(FLAGS.budgets_kb or []) + len(FLAGS.augmented_budgets_kb or [])
    return budgets * max(1, len(FLAGS.supernet_seeds))


def _supernet_seeds() -> list[int]:
    """--supernet_seeds as distinct integers."""
    try:
        seeds = [int(s) for s in FLAGS.supernet_seeds]
    except ValueError:
        seeds = None
    if seeds is None or len(set(seeds)) != len(seeds):
        raise UdcError(f"--supernet_seeds must be distinct integers, got {','.join(FLAGS.supernet_seeds)}; "
                       "e.g. --supernet_seeds 1,2,3")
    return seeds


def _check_numbers() -> None:
    """The numeric flags, before any slow work: one line for the first that makes no sense."""
    check_goal(FLAGS.max_drop, FLAGS.max_cost, FLAGS.max_cost_ratio, FLAGS.cheaper_than_flash_peer)
    if not 0 < FLAGS.val_fraction < 1:
        raise UdcError(f"--val_fraction must lie strictly between 0 and 1, got {FLAGS.val_fraction:g}; "
                       "the thresholds are calibrated on that share of the training set, e.g. --val_fraction 0.1")
    for name, least, meaning in (("latency_repeats", 1, "timed invocations per member"),
                                 ("epochs", 1, "epochs per trained member"),
                                 ("augmented_finetune_epochs", 1, "fine-tuning epochs of an augmented member"),
                                 ("max_train", 0, "training images kept (0 = all)"),
                                 ("max_test", 0, "test images kept (0 = all)"),
                                 ("max_members", 0, "members chosen from the pool (0 = every member)")):
        if FLAGS[name].value < least:
            raise UdcError(f"--{name} is the number of {meaning} and must be at least {least}, "
                           f"got {FLAGS[name].value}")
    members = len(FLAGS.members) + _searched_count() + len(FLAGS.train_widths)  # one source is given
    check_member_count(FLAGS.max_members or members)  # before any member is searched or trained
    _train_widths()
    _supernet_seeds()


def _data_config(member_input=None):
    """The data keys of udc.data.load_splits, from the dataset flags; with `member_input`, the members' input shape
    (1, height, width, channels), an image folder's size and colour are the members' (other loaders ignore them)."""
    import ml_collections

    images = {}
    if member_input is not None and len(member_input) == 4:
        images = {"image_size": tuple(member_input[1:3]), "grayscale": member_input[3] == 1}
    return ml_collections.ConfigDict({
        "dataset": FLAGS.dataset, "data_dir": FLAGS.data_dir, "download": False, "val_fraction": FLAGS.val_fraction,
        "seed": FLAGS.seed, "max_train_examples": FLAGS.max_train, "max_test_examples": FLAGS.max_test, **images})


def main(argv):
    del argv
    _check_numbers()  # before TensorFlow loads: a mistyped flag costs no start-up time
    source = _member_source()
    from pathlib import Path

    from udc import tflite_file

    # A bad member file is refused before TensorFlow's start-up too.
    shapes = [tflite_file.input_shape(tflite_file.check_int8(tflite_file.read_bytes(path), str(path)))
              for path in (FLAGS.members if source == "--members" else ())]
    from udc.data import load_splits, split_seed
    from udc.ensemble import calibrate, check_held_out, load_members, report
    from udc.fileio import ensure_writable_dir
    from udc.targets import get_target, target_of
    from udc.workflows.ensemble_members import search_members, train_width_members

    if source == "--config":
        config = loaded_config(FLAGS["config"])
        budgets = budgets_kb(FLAGS["budgets_kb"])
        if FLAGS.accelerator:  # the searches are made for it too
            config.export.accelerator = FLAGS.accelerator
        target = target_of(config)
    else:
        config = _data_config(shapes[0] if shapes else None)
        target = get_target(FLAGS.accelerator or DEFAULT_ACCELERATOR)

    def loaded(paths):
        return load_members(paths, target=target, latency_repeats=FLAGS.latency_repeats)

    # Given members are checked (full-integer int8, readable, compatible) before anything is written.
    members = loaded(FLAGS.members) if source == "--members" else None
    if members is not None:  # made elsewhere: they must not have trained on this calibration's validation images
        check_held_out(members, config.dataset, split_seed(config), config.val_fraction)
    output_dir = ensure_writable_dir(FLAGS.output_dir or (FLAGS.workdir if source == "--config" else "ensemble_out"))
    splits = load_splits(config)
    if source == "--config":
        members = loaded(search_members(config, budgets, FLAGS.workdir, supernet_seeds=_supernet_seeds(),
                                        augmented_budgets_kb=budgets_kb(FLAGS["augmented_budgets_kb"]),
                                        augmented_finetune_epochs=FLAGS.augmented_finetune_epochs))
    elif source == "--train_widths":
        members = loaded(train_width_members(splits, _train_widths(), Path(output_dir) / "members",
                                             epochs=FLAGS.epochs, seed=FLAGS.seed))
    result = calibrate(members, splits, rule=FLAGS.rule, cost_metric=FLAGS.cost, combination=FLAGS.combination,
                       max_drop=FLAGS.max_drop, max_cost=FLAGS.max_cost, max_cost_ratio=FLAGS.max_cost_ratio,
                       cheaper_than_flash_peer=FLAGS.cheaper_than_flash_peer, max_members=FLAGS.max_members)
    result.report["accelerator"] = target.name
    result.report["command"] = " ".join([PROG] + [shlex.quote(a) for a in sys.argv[1:]])
    descriptor = result.cascade.save(Path(output_dir) / "cascade.json")
    result.report["descriptor"] = str(descriptor)
    files = report.write_report(result.report, output_dir)
    chosen = result.report["chosen"]
    ratio = chosen["test_cost_ratio_vs_full_ensemble"][FLAGS.cost]
    print(f"cascade: test accuracy {100 * chosen['test_accuracy']:.2f} % "
          f"(full ensemble {100 * result.report['full_ensemble']['test_accuracy']:.2f} %), "
          f"average {FLAGS.cost} {100 * ratio:.1f} % of the full ensemble")
    print(f"wrote {descriptor}, {files['json']}, {files['md']}, {files['png']}")
    return 0


def run():
    define_flags()
    run_binary(PROG, main)


if __name__ == "__main__":
    run()
