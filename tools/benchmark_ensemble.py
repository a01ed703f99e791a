"""Benchmark of the flexible ensemble on Fashion-MNIST: benchmarks/fashion_mnist/ensemble.{json,md,png}.

  python tools/benchmark_ensemble.py
  python tools/benchmark_ensemble.py --udc_budgets_kb=6,12,24,48   # -> ensemble_udc.{json,md,png}
  python tools/benchmark_ensemble.py --pool=runs/a/udc_8kb/model.tflite,... --max_members=4   # -> ensemble_udc

1. The members: by default fmnist_cnn trained (--members: width multiplier and seed
   of each) on the first --max_train images of the training split and exported as
   int8 .tflite (kept in --work_dir; reused when they exist with the same settings).
   With --udc_budgets_kb, the UDC models searched at those budgets in
   --udc_workdir/udc_<K>kb (as udc-benchmark leaves them; a finished search of the same
   --config is reused, a missing one is searched). With --pool, the given udc-search exports
   (each WORKDIR/model.tflite beside its report.json) are a pool from which --max_members are
   chosen on validation (udc.ensemble.selection).
2. Runs the cascade calibration exactly as `udc-ensemble` does: members ordered by
   Vela cycles on --accelerator, thresholds swept on the config's held-out validation
   split (never seen in training), the goal --max_drop (or --max_cost_ratio), reported on the test split.
3. Writes the report with this command, the machine and the issue's goals checked. With --pool the
   cascade is also set against every single model of the pool (their test accuracy from their own
   reports): the ones of equal or more Vela cycles than its average, and the most accurate one that fits
   in the flash the cascade's members take together (a device stores every member).
"""

import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's udc, not an installed one

import udc  # noqa: E402,F401
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from udc.cli.common import loaded_config  # noqa: E402
from udc.cli.flags import budgets_kb, define_config_flag  # noqa: E402

CONFIG = define_config_flag("configs/fashion_mnist.py")
flags.DEFINE_string("output_dir", "benchmarks/fashion_mnist", "Where ensemble.{json,md,png} go.")
flags.DEFINE_string("work_dir", "runs/benchmark_ensemble", "Members and the deployment descriptor.")
flags.DEFINE_list("members", ["0.25:0", "0.5:1", "1:1", "1:2"],
                  "Members as width_multiplier:seed pairs of fmnist_cnn (two seeds of the widest).")
flags.DEFINE_list("udc_budgets_kb", [], "Instead of width members: the UDC models of --config searched at "
                  "these budgets (KiB) in --udc_workdir; the report is ensemble_udc.{json,md,png}.")
flags.DEFINE_string("udc_workdir", "runs/benchmark", "Where the searches live, as udc_<K>kb (udc-benchmark's).")
flags.DEFINE_list("pool", [], "Instead: udc-search exports (WORKDIR/model.tflite) to choose the members from; the "
                  "report is ensemble_udc.{json,md,png}.")
flags.DEFINE_integer("max_members", 0, "With --pool: members chosen from it (0: every one).")
flags.DEFINE_integer("epochs", 3, "Training epochs per member.")
flags.DEFINE_integer("max_train", 27000, "Training images per member (keeps the run short on 2 cores).")
flags.DEFINE_string("accelerator", None, "Ethos-U configuration for Vela cycles (default: the config's; "
                    "the searches are made for it too).")
flags.DEFINE_float("max_drop", 0.2, "Goal: accuracy points below the full ensemble (validation).")
flags.DEFINE_float("max_cost_ratio", None, "Instead: the most accurate operating point (validation) at this share "
                   "of the full ensemble's average cycles or less, the issue's cost goal (--max_drop then applies only "
                   "if given).")
flags.DEFINE_boolean("cheaper_than_flash_peer", False, "Also cost less (validation) than the most accurate single "
                     "model that fits in the cascade's flash, the issue's equal-flash goal.")
flags.DEFINE_enum("rule", "max_prob", ["max_prob", "margin"], "Exit rule.")
flags.DEFINE_enum("combination", "log_linear", ["log_linear", "average"], "How a stage combines its members.")
FLAGS = flags.FLAGS

GOAL_DROP_POINTS = 0.2
GOAL_COST_RATIO = 0.40
GOAL_FULL_ENSEMBLE_GAIN_POINTS = 0.5


def _parse_members():
    try:
        return [(float(w), int(sd)) for w, sd in (entry.split(":") for entry in FLAGS.members)]
    except ValueError:
        raise SystemExit(f"--members takes width:seed pairs, got {','.join(FLAGS.members)}") from None


def _width_members(config, work_dir: Path) -> dict:
    """One .tflite per width:seed, with how it was trained; a file is reused when its sidecar
    JSON has the same settings."""
    from udc.data import load_raw, make_splits
    from udc.fileio import write_json_atomic
    from udc.workflows.ensemble_members import train_width_members

    splits, paths = None, []
    for width, seed in _parse_members():
        settings = {"width": width, "seed": seed, "epochs": FLAGS.epochs, "max_train": FLAGS.max_train,
                    "split_seed": config.seed, "val_fraction": config.val_fraction}
        path = work_dir / "members" / (f"fmnist_cnn_w{width:g}".replace(".", "p") + f"_s{seed}.tflite")
        sidecar = path.with_suffix(".json")
        if path.is_file() and sidecar.is_file() and json.loads(sidecar.read_text())["settings"] == settings:
            print(f"reusing {path}")
        else:
            if splits is None:
                splits = make_splits(load_raw(config.dataset), val_fraction=config.val_fraction, seed=config.seed,
                                     max_train=FLAGS.max_train)
            start = time.time()
            train_width_members(splits, (width,), path.parent, epochs=FLAGS.epochs, seeds=(seed,), verbose=2)
            write_json_atomic(sidecar, {"settings": settings, "train_seconds": round(time.time() - start, 1)})
        paths.append(str(path))
    return {p: json.loads(Path(p).with_suffix(".json").read_text()) for p in paths}


def _udc_members(config, budgets) -> dict:
    """The searched model.tflite per budget, with what its search measured."""
    from udc.workflows.ensemble_members import search_members

    return _search_origins(search_members(config, budgets, FLAGS.udc_workdir))


def _search_origins(paths) -> dict:
    """{model.tflite: what its search measured (its report.json beside it)}."""
    origin = {}
    for p in paths:
        report = json.loads((Path(p).parent / "report.json").read_text())
        s = report["search"]
        origin[p] = {"budget_bytes": s["budget_bytes"], "vela_encoded_bytes": s["vela_encoded_bytes"],
                     "int8_test_accuracy": report["accuracy"]["int8_tflite"], "total_seconds": s["total_seconds"]}
    return origin


def goal_checks(r: dict, pool=None) -> dict:
    """The issue's goals, each met or not, computed from the calibration report; with `pool` ({name: {cycles,
    flash_kib, test_accuracy}} of the single models a pool offered) the cascade against them too."""
    chosen = r["chosen"]
    drop = chosen["test_drop_points_vs_full_ensemble"]
    ratio = chosen["test_cost_ratio_vs_full_ensemble"]["vela_cycles"]
    best = chosen["best_single_member_at_or_below_cost"]
    cost = chosen["test_average_cost"]["vela_cycles"]
    return {
        f"accuracy within {GOAL_DROP_POINTS} points of the full ensemble on test: drop {drop:.2f} points":
            drop <= GOAL_DROP_POINTS + 1e-9,
        f"average Vela cycles at most {100 * GOAL_COST_RATIO:.0f} % of the full ensemble: {100 * ratio:.1f} %":
            ratio <= GOAL_COST_RATIO,
        f"beats every single member at or below its average cost ({cost:,.0f} cycles); the most accurate of "
        f"them is {best['name']} at {best['cost']['vela_cycles']:,.0f} cycles, {100 * best['test_accuracy']:.2f} %; "
        f"cascade {100 * chosen['test_accuracy']:.2f} %": chosen["beats_best_single_member_at_or_below_cost"],
        **_full_ensemble_gain(r), **(_versus_pool(r, pool) if pool else {}),
    }


def _full_ensemble_gain(r) -> dict:
    full, best = r["full_ensemble"]["test_accuracy"], max(m["test_accuracy"] for m in r["members"])
    gain = 100 * (full - best)
    return {f"full ensemble at least {GOAL_FULL_ENSEMBLE_GAIN_POINTS} points above its best member on test: "
            f"{100 * full:.2f} % against {100 * best:.2f} % ({gain:+.2f} points)":
            gain >= GOAL_FULL_ENSEMBLE_GAIN_POINTS - 1e-9}


def _versus_pool(r, pool) -> dict:
    """The cascade against the pool's single models: those of equal or more cycles, and at equal total flash."""
    chosen = r["chosen"]
    accuracy, cycles, flash = chosen["test_accuracy"], chosen["test_average_cost"]["vela_cycles"], r["storage"]["flash_kib"]
    slower = {name: m for name, m in pool.items() if m["cycles"] >= cycles}
    best_slower = max(slower, key=lambda n: slower[n]["test_accuracy"], default=None)
    checks = {}
    if best_slower:
        checks[f"more accurate than every single model of the pool at or above its average cycles ({cycles:,.0f}; "
               f"{len(slower)} of {len(pool)}, the most accurate {best_slower} at {pool[best_slower]['cycles']:,} "
               f"cycles, {100 * pool[best_slower]['test_accuracy']:.2f} %); cascade {100 * accuracy:.2f} %"] = (
            accuracy > pool[best_slower]["test_accuracy"])
    fitting = {name: m for name, m in pool.items() if m["flash_kib"] <= flash + 1e-9}
    best = max(fitting, key=lambda n: fitting[n]["test_accuracy"])  # every member fits alone
    checks[f"at equal total flash ({flash:.1f} KiB, every member stored): the most accurate single model of the "
           f"pool within it is {best} ({pool[best]['flash_kib']:.1f} KiB, {100 * pool[best]['test_accuracy']:.2f} % "
           f"at {pool[best]['cycles']:,} cycles); cascade {100 * accuracy:.2f} % at {cycles:,.0f} average cycles, "
           "not lower with fewer cycles"] = (accuracy >= pool[best]["test_accuracy"]
                                               and cycles < pool[best]["cycles"])
    return checks


def main(argv):
    del argv
    from udc.data import load_splits, split_seed
    from udc.ensemble import calibrate, check_held_out, load_members, report
    from udc.fileio import write_text_atomic
    from udc.report.machine import load_average
    from udc.targets import target_of

    command = " ".join(["python", "tools/benchmark_ensemble.py"] + [shlex.quote(a) for a in sys.argv[1:]])
    load_before = load_average()
    config = loaded_config(CONFIG)
    config_filename = config_flags.get_config_filename(FLAGS["config"])
    if FLAGS.accelerator:
        config.export.accelerator = FLAGS.accelerator
    target = target_of(config)
    work_dir = Path(FLAGS.work_dir)
    udc_members = bool(FLAGS.udc_budgets_kb or FLAGS.pool)
    suffix = "_udc" if udc_members else ""
    if FLAGS.pool:
        origin = _search_origins(FLAGS.pool)
        equivalent = (f"udc-ensemble --members {','.join(origin)} --max_members {FLAGS.max_members} --dataset "
                      f"{config.dataset} --val_fraction {config.val_fraction:g} --seed {split_seed(config)}")
    elif udc_members:
        origin = _udc_members(config, budgets_kb(FLAGS["udc_budgets_kb"]))
        overrides = [a for a in sys.argv[1:] if a.startswith("--config.")]
        equivalent = " ".join([f"udc-ensemble --config={config_filename}", *overrides,
                               f"--budgets_kb={','.join(FLAGS.udc_budgets_kb)} --workdir={FLAGS.udc_workdir}"])
    else:
        origin = _width_members(config, work_dir)
        equivalent = (f"udc-ensemble --members {','.join(origin)} --dataset {config.dataset} "
                      f"--val_fraction {config.val_fraction:g} --seed {split_seed(config)}")
    paths = list(origin)
    # The held-out validation split: members were trained on train images only, so all of it is unseen.
    splits = load_splits(config)
    members = load_members(paths, target=target, latency_repeats=200)
    check_held_out(members, config.dataset, split_seed(config), config.val_fraction)
    max_drop = None if FLAGS.max_cost_ratio is not None and not FLAGS["max_drop"].present else FLAGS.max_drop
    result = calibrate(members, splits, rule=FLAGS.rule, cost_metric="vela_cycles", max_drop=max_drop,
                       combination=FLAGS.combination, max_members=FLAGS.max_members,
                       max_cost_ratio=FLAGS.max_cost_ratio, cheaper_than_flash_peer=FLAGS.cheaper_than_flash_peer)
    r = result.report
    r["accelerator"] = target.name
    r["command"] = command
    r["equivalent_udc_ensemble_command"] = (
        f"{equivalent} --accelerator {target.accelerator}"
        + (f" --max_drop {max_drop:g}" if max_drop is not None else "")
        + (f" --max_cost_ratio {FLAGS.max_cost_ratio:g}" if FLAGS.max_cost_ratio is not None else "")
        + (" --cheaper_than_flash_peer" if FLAGS.cheaper_than_flash_peer else "")
        + f" --rule {FLAGS.rule} "
        f"--output_dir {work_dir / ('report' + suffix)}")
    r["members_origin"] = origin
    pool = ({m.name: {"cycles": m.vela_cycles, "flash_kib": m.flash_kib,
                      "test_accuracy": origin[m.path]["int8_test_accuracy"]} for m in members}
            if FLAGS.pool else None)
    r["pool"] = pool
    checks = goal_checks(r, pool)
    r["goals_met"] = all(checks.values())
    goals = [f"{text} -> {'met' if met else 'NOT met'}" for text, met in checks.items()]
    for v in r["versus_single_members"]:
        goals.append(
            f"at the cost of {v['member']}: cascade {100 * v['cascade_test_accuracy']:.2f} % vs member "
            f"{100 * v['member_test_accuracy']:.2f} % -> " + ("better" if v["cascade_better"] else "NOT better"))
    full = r["full_ensemble"]
    best_member = max(r["members"], key=lambda m: m["test_accuracy"])
    if full["test_accuracy"] < best_member["test_accuracy"]:
        goals.append(
            f"note: the full ensemble (equal-weight average, {100 * full['test_accuracy']:.2f} %) is below its "
            f"best member ({best_member['name']}, {100 * best_member['test_accuracy']:.2f} %): averaging in the "
            "weaker members costs accuracy on the inputs that reach the strong ones; the best point of "
            f"the cascade curve reaches {100 * max(c['test_accuracy'] for c in r['curve']):.2f} % on test")
    r["goals"] = goals
    members_text = (f"chosen from a pool of {len(FLAGS.pool)} UDC searches" if FLAGS.pool else
                    f"UDC searches of {config_filename} at {', '.join(FLAGS.udc_budgets_kb)} KiB "
                    f"in {FLAGS.udc_workdir}" if udc_members else
                    f"fmnist_cnn members trained {FLAGS.epochs} epochs on the first {FLAGS.max_train} training images")
    r["notes"] = (f"Members: {members_text} (split seed {split_seed(config)}); calibrated on the {len(splits.val):,} "
                  f"held-out validation images; reported on the {len(splits.test):,} test images. Host latency: "
                  "median of 200 batch-1 LiteRT invocations, one thread, on a machine shared with other jobs "
                  "(noisy); Vela cycles are exact for the model.")
    r["load_average"] = {"before": load_before, "after": load_average()}  # 1, 5 and 15 minutes
    r["notes"] += (f" Load average (1, 5, 15 min) before the run {r['load_average']['before']}, after "
                   f"{r['load_average']['after']}.")
    result.cascade.save(work_dir / f"cascade{suffix}.json")
    files = report.write_report(r, FLAGS.output_dir, stem=f"ensemble{suffix}")
    md = Path(files["md"])
    text = md.read_text().replace("## Members (cheapest first)", f"{r['notes']}\n\nThe same calibration "
                                  f"from the command line:\n\n```\n{r['equivalent_udc_ensemble_command']}\n```\n\n"
                                  "## Members (cheapest first)", 1)
    write_text_atomic(md, text)
    print("\n".join(goals))
    print(f"all goals met: {r['goals_met']}")
    print(f"wrote {files}")


if __name__ == "__main__":
    app.run(main)
