"""udc-benchmark: tfmot baselines and UDC searches on one backbone, as accuracy vs Vela size.

    udc-benchmark --config=configs/fashion_mnist.py --budgets_kb=6,12,24,48 --workdir=runs/benchmark

Writes pareto.json, pareto.md and pareto.png (in --output_dir, default
benchmarks/<dataset>); a rerun with the same --workdir resumes after the last finished point.
"""

import sys

from absl import flags

from udc.cli.common import loaded_config, run_binary
from udc.cli.flags import budgets_kb, define_budgets_flag, define_config_flag, define_workdir_flag

_CONFIG = define_config_flag()
_WORKDIR = define_workdir_flag("runs/benchmark")
_RECIPES = flags.DEFINE_list(
    "recipes", "ptq_int8,qat_int8,pqat_50,pqat_75,pqat_90,cqat_16,pcqat_75_16,uniform4,uniform4_sp75",
    "Baseline recipes to run (see udc.workflows.baselines).")
_BUDGETS = define_budgets_flag("6,12,24,48")
_EPOCHS = flags.DEFINE_integer("finetune_epochs", 2, "Fine-tuning epochs every baseline recipe gets.")
_RANDOM_CONTROLS = flags.DEFINE_integer(
    "random_controls", 3, "Random children of the trained supernet, fine-tuned as the searched one, at each of "
    "the two smallest budgets (udc.workflows.controls); 0: none.", lower_bound=0)
_UNIFORM_CONTROLS = flags.DEFINE_boolean(
    "uniform_controls", True, "Also ship the best uniform child (every layer the same bits and sparsity, widths "
    "scaled to fit) at every budget (udc.workflows.controls).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where pareto.* go (default: benchmarks/<dataset>).")
flags.mark_flags_as_required(["config"])


def _fmt(value, spec, none="–"):
    return none if value is None else format(value, spec)


def training_budget(config, finetune_epochs: int) -> str:
    """The epochs each kind of point trains, in words (the rule of udc.workflows.baselines and udc.search)."""
    s = config.search
    steps = f"{s.steps_per_epoch} batches" if s.steps_per_epoch else "the whole training split"
    return (f"Training budget: the baselines share one float {config.backbone} trained {config.train.epochs} epochs "
            f"(batch {config.train.batch_size}); each recipe then fine-tunes {finetune_epochs} epoch(s) on the whole "
            "training split, at least one per phase (`udc.workflows.baselines`: qat_int8 and uniform4 one phase; pqat_*, "
            "cqat_16 and uniform4_sp75 two; pcqat_75_16 three). UDC "
            + ("starts from the same float model, then trains " if s.warm_start else "trains from scratch, no float model: ")
            + f"one supernet for all budgets ({s.supernet_epochs} epochs), then per budget {s.search_epochs} search "
            f"epochs (choices only) + {s.finetune_epochs} QAT fine-tuning epochs, all of "
            f"{steps} (batch {s.batch_size}, search training rule '{s.training}'; fine-tune peak rate "
            f"{s.finetune_learning_rate:g}, {s.finetune_lr_schedule}). The controls take their children from the same "
            f"supernet and fine-tune them the same way. Seed {config.seed} everywhere.")


def markdown(points, summary, command, machine, budget, load) -> str:
    lines = ["# Pareto benchmark: UDC against tfmot recipes, measured by Vela", "",
             f"Made with `{command}` on {machine}; load average (1, 5, 15 min) before {load[0]}, after {load[1]} "
             "(the run itself keeps the cores busy).", "", budget, "",
             "| point | kind | int8 test accuracy | Vela encoded bytes | flash KiB | cycles | wall s |",
             "|---|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: p["encoded_bytes"]):
        front = " (front)" if p["name"] in summary["front"] else ""
        lines.append(f"| {p['name']}{front} | {p['kind']} | {100 * p['accuracy']:.2f} % | "
                     f"{p['encoded_bytes']:,} | {p['flash_kib']:.1f} | {p['cycles']:,} | {p['wall_seconds']:.0f} |")
    earlier = [p for p in points if p.get("source")]
    if earlier:
        lines += ["", "Points measured by an earlier run with the same config and seed, kept in the workdir and reused:", ""]
        lines += [f"- {p['name']}: `{p['source']}`" for p in earlier]
    lines += ["", "Size at selection against Vela's bytes of the export: the codec's bytes of the selected child "
              "(what selection fits to the limit) and the search's differentiable estimate (its calibrated "
              "tables).", "",
              "| UDC point | budget B | Vela encoded B | exports | selection codec vs Vela | search estimate vs Vela |",
              "|---|---|---|---|---|---|"]
    for p in points:
        if p["kind"] == "udc":
            codec = p.get("selection_codec_error")
            lines.append(f"| {p['name']} | {p['budget_bytes']:,} | {p['encoded_bytes']:,} | "
                         f"{p.get('export_attempts', '–')} | {'–' if codec is None else f'{codec:+.2%}'} | "
                         f"{p['selection_estimate_error']:+.2%} |")
    if summary["controls"]:
        lines += ["", "Does the search earn its keep? Controls from the same trained supernet at the same limit, "
                  "fine-tuned and exported exactly as the searched child (`udc.workflows.controls`): random children and the "
                  "best uniform child (same bits and sparsity in every layer, widths scaled to fit).", "",
                  "| UDC point | searched | controls | beats every control |", "|---|---|---|---|"]
        for r in summary["controls"]:
            shown = ", ".join(f"{name} {100 * a:.2f} %" for name, a in r["controls"].items())
            lines.append(f"| {r['name']} | {100 * r['accuracy']:.2f} % | {shown} | "
                         f"{'yes' if r['beats_every_control'] else 'NO'} |")
    lines += ["", "Per baseline: the smallest UDC point within 0.3 points of its accuracy (goal: at most 1/4 of "
              "its bytes, a ratio of 4x or more).", "",
              "| baseline | accuracy | Vela encoded B | smallest UDC point within 0.3 points | size ratio | 4x |",
              "|---|---|---|---|---|---|"]
    for r in summary["baselines"]:
        ratio = r["size_ratio"]
        lines.append(f"| {r['baseline']} | {100 * r['accuracy']:.2f} % | {r['encoded_bytes']:,} | "
                     f"{r['udc_point'] or 'none'} | {_fmt(ratio, '.2f')}x | "
                     f"{'met' if ratio is not None and ratio >= 4 else 'NOT met'} |")
    lines += ["", "| UDC point | size ratio at iso-accuracy | accuracy gain at iso-size (points) |", "|---|---|---|"]
    for r in summary["udc"]:
        lines.append(f"| {r['name']} | {_fmt(r['iso_accuracy_size_ratio'], '.2f')}x | "
                     f"{_fmt(r['iso_size_accuracy_gain_points'], '+.2f')} |")
    best = summary["best_iso_accuracy_size_ratio"]
    verdict = ("no UDC point was matched by a baseline within 0.3 points" if best is None else
               f"best size ratio at iso-accuracy: {best:.2f}x; goal (at least 4x) "
               + ("met" if best >= 4 else "NOT met"))
    short = [r["name"] for r in summary["udc"] if (r["iso_accuracy_size_ratio"] or 0) < 4]
    if best is not None and short:  # the best ratio alone hides where UDC falls short
        verdict += f", but not at {', '.join(short)}"
    top_udc = max((p for p in points if p["kind"] == "udc"), key=lambda p: p["accuracy"])
    top = max(points, key=lambda p: p["accuracy"])
    if top["kind"] == "baseline":
        verdict += (f"; no UDC point reaches the accuracy of {top['name']} ({100 * top['accuracy']:.2f} %), "
                    f"the most accurate UDC point is {top_udc['name']} ({100 * top_udc['accuracy']:.2f} %)")
    lines += ["", f"**{verdict}.** Size ratio: encoded bytes of the smallest baseline at or above the UDC "
              "model's accuracy minus 0.3 points, divided by the UDC model's. Gain: UDC accuracy minus the "
              "best baseline no larger than it.", "", "![accuracy vs encoded size](pareto.png)"]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    from pathlib import Path

    from udc.fileio import ensure_writable_dir, write_json_atomic, write_text_atomic
    from udc.report.machine import describe_machine, load_average
    from udc.report.pareto import compare, plot
    from udc.workflows.baselines import FineTuning
    from udc.workflows.benchmark import run_benchmark

    load_before = load_average()
    config = loaded_config(_CONFIG)
    budgets = budgets_kb(_BUDGETS)
    tuning = FineTuning(epochs=_EPOCHS.value, batch_size=config.train.batch_size, seed=config.seed)
    points = run_benchmark(config, Path(_WORKDIR.value), _RECIPES.value, budgets, tuning,
                           random_controls=_RANDOM_CONTROLS.value, uniform_controls=_UNIFORM_CONTROLS.value)
    summary = compare(points)
    out = ensure_writable_dir(_OUTPUT_DIR.value or f"benchmarks/{config.dataset}")
    command = " ".join(["udc-benchmark", *sys.argv[1:]])
    machine = describe_machine()
    budget = training_budget(config, _EPOCHS.value)
    load = (load_before, load_average())
    write_json_atomic(out / "pareto.json", {"command": command, "machine": machine, "load_average": load,
                                            "finetune_epochs": _EPOCHS.value, "training_budget": budget,
                                            "points": points, "summary": summary})
    plot(points, out / "pareto.png", f"{config.dataset}, {config.backbone}, {config.export.accelerator}")
    text = markdown(points, summary, command, machine, budget, load)
    write_text_atomic(out / "pareto.md", text)
    print(text)


def run():
    run_binary("udc-benchmark", main)
