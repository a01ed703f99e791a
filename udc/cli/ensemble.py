"""udc-ensemble: calibrate a flexible ensemble with early exit over .tflite classifiers.

  udc-ensemble --members a.tflite,b.tflite,c.tflite --accelerator ethos-u55-128 --max_drop 0.5

orders the members cheapest first (Vela cycles or host latency), sweeps the exit
thresholds on the validation split, picks the operating point for the goal and writes
ensemble.{json,md,png} and the deployment descriptor cascade.json to --output_dir.
Without --members, --train_widths trains fmnist_cnn members at those width multipliers
first (members from the UDC search at several budgets will come the same way).
"""

import shlex
import sys

import udc  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from absl import app, flags

from udc.errors import UdcError

FLAGS = flags.FLAGS
PROG = "udc-ensemble"


def define_flags():
    if "members" in FLAGS:  # already defined (tests run the binary in-process)
        return
    flags.DEFINE_list("members", [], "Comma-separated member .tflite files (same inputs and classes).")
    flags.DEFINE_string("accelerator", "ethos-u55-128", "Ethos-U configuration for Vela cycles.")
    flags.DEFINE_float("max_drop", None, "Goal: lowest average cost within this many accuracy points "
                       "of the full ensemble (on validation).")
    flags.DEFINE_float("max_cost", None, "Goal: best accuracy at this average cost or less "
                       "(cycles for --cost=vela_cycles, ms for host_latency).")
    flags.DEFINE_enum("rule", "max_prob", ["max_prob", "margin"], "Exit test: top probability or top-1 minus top-2.")
    flags.DEFINE_enum("cost", "vela_cycles", ["vela_cycles", "host_latency"], "Cost that orders members and is minimised.")
    flags.DEFINE_string("output_dir", "ensemble_out", "Where the report and cascade.json go.")
    flags.DEFINE_string("dataset", "fashion_mnist", "Dataset for the validation and test splits.")
    flags.DEFINE_string("data_dir", "", "Folder with the dataset files (default: the standard places).")
    flags.DEFINE_float("val_fraction", 0.1, "Fraction of the training set held out for validation.")
    flags.DEFINE_integer("seed", 0, "Seed of the train/validation split (use the members' training split).")
    flags.DEFINE_integer("max_train", 0, "Cut the training split (and validation in proportion); 0 = all.")
    flags.DEFINE_integer("max_test", 0, "Cut the test split; 0 = all.")
    flags.DEFINE_list("train_widths", [], "Without --members: train fmnist_cnn members at these width "
                      "multipliers (e.g. 0.25,0.5,1) on the training split, then calibrate.")
    flags.DEFINE_integer("epochs", 3, "Epochs per trained member (--train_widths).")
    flags.DEFINE_integer("latency_repeats", 50, "Batch-1 invocations timed per member for host latency.")


def _splits():
    from udc.data import load_raw, make_splits

    raw = load_raw(FLAGS.dataset, data_dir=FLAGS.data_dir or None)
    return make_splits(raw, val_fraction=FLAGS.val_fraction, seed=FLAGS.seed,
                       max_train=FLAGS.max_train or None, max_test=FLAGS.max_test or None)


def main(argv):
    del argv
    from pathlib import Path

    from udc.ensemble import calibrate, load_members, report, train_width_members
    from udc.fileio import ensure_writable_dir
    from udc.hardware import resolve_target

    if FLAGS.max_drop is None and FLAGS.max_cost is None:
        raise UdcError("give a goal: --max_drop (accuracy points) or --max_cost (average cost)")
    output_dir = ensure_writable_dir(FLAGS.output_dir)
    target = resolve_target(FLAGS.accelerator)
    splits = _splits()
    paths = list(FLAGS.members)
    if not paths:
        if not FLAGS.train_widths:
            raise UdcError("give the members: --members a.tflite,b.tflite,... or --train_widths 0.25,0.5,1")
        try:
            widths = [float(w) for w in FLAGS.train_widths]
        except ValueError:
            raise UdcError(f"--train_widths must be numbers, got {','.join(FLAGS.train_widths)}") from None
        paths = train_width_members(splits, widths, Path(output_dir) / "members", epochs=FLAGS.epochs,
                                    seed=FLAGS.seed)
    members = load_members(paths, target=target, latency_repeats=FLAGS.latency_repeats)
    result = calibrate(members, splits, rule=FLAGS.rule, cost_metric=FLAGS.cost,
                       max_drop=FLAGS.max_drop, max_cost=FLAGS.max_cost)
    result.report["accelerator"] = target.accelerator
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

    def guarded(argv):
        try:
            return main(argv)
        except UdcError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)


if __name__ == "__main__":
    run()
