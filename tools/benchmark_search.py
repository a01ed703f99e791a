"""The searched points of a `udc-benchmark` run in detail: benchmarks/<dataset>/udc.{json,md}.

    python tools/benchmark_search.py --workdir=runs/benchmark_v4 [--config=configs/fashion_mnist.py]

`udc-benchmark` already searches every budget from one float model and one trained
supernet (train once, search many); rerunning the same searches here would only measure
them twice. This reads its finished WORKDIR instead: per budget, the int8 accuracy of the
.tflite, Vela's encoded bytes against the budget, the size model's error against Vela at
selection (supernet weights) and on the exported weights, the exports, the chosen layers
and the wall time; at the end of each search, the validation accuracy of the decoded child
(the network the search points at) beside the soft mixture's, which the search steers;
once, the float model's and the supernet's training time. Then it
measures, on this machine and now (run it idle), the supernet's training and search step
times beside the plain backbone's training step (same batch, back to back).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.machine import describe_machine  # noqa: E402
from udc.search.selection import format_choices  # noqa: E402

SIZE_FIGURES = (("selection", "estimate"), ("selection", "codec"), ("export", "estimate"), ("export", "plain_codec"))


def step_times(config_path, steps=30):
    """Median seconds of a plain backbone step, a supernet training step and a search step, back to back
    (and the batch size)."""
    code = f"""
import json, sys, time, tempfile
sys.path.insert(0, {str(ROOT)!r})
import numpy as np
from udc.compat import keras, tf
from udc.data import load_splits
from udc.models import build_backbone
from udc.search.loop import SupernetSearch
import importlib.util
spec = importlib.util.spec_from_file_location("c", {str(ROOT / config_path)!r}); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
config = m.get_config()
splits = load_splits(config)
bs = int(config.search.batch_size)
x, y = splits.train.x[:bs], splits.train.y[:bs]
plain = build_backbone(config.backbone, splits.input_shape, splits.num_classes)
opt = keras.optimizers.Adam(1e-3); loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
@tf.function
def plain_step(x, y):
    with tf.GradientTape() as tape:
        loss = loss_fn(y, plain(x, training=True))
    grads = tape.gradient(loss, plain.trainable_variables)
    opt.apply_gradients(zip(grads, plain.trainable_variables))
    return loss
search = SupernetSearch(config, splits, tempfile.mkdtemp(), log=lambda _: None)
def timed(fn):
    for _ in range(3): float(fn())
    t = []
    for _ in range({steps}):
        t0 = time.perf_counter(); float(fn()); t.append(time.perf_counter() - t0)
    return float(np.median(t))
p1 = timed(lambda: plain_step(x, y)); t1 = timed(lambda: search.train_step(x, y)[0])
s1 = timed(lambda: search.search_step(x, y)[0])
p2 = timed(lambda: plain_step(x, y)); t2 = timed(lambda: search.train_step(x, y)[0])
s2 = timed(lambda: search.search_step(x, y)[0])
print(json.dumps({{"plain_step_s": (p1 + p2) / 2, "supernet_step_s": (t1 + t2) / 2, "search_step_s": (s1 + s2) / 2,
                  "batch_size": bs}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def budget_row(name, report, point) -> dict:
    s = report["search"]
    return {"name": name, "budget_bytes": s["budget_bytes"], "vela_encoded_bytes": s["vela_encoded_bytes"],
            "within_budget": s["within_budget"], "int8_accuracy": report["accuracy"]["int8_tflite"],
            "keras_accuracy": report["accuracy"]["keras"],
            **{f"{stage}_{figure}_{unit}": s[f"{stage}_{figure}_{unit}"] for stage, figure in SIZE_FIGURES
               for unit in ("bytes", "error")},
            "export_attempts": s["export_attempts"], "wall_time_s": point["wall_seconds"],
            "npu_fraction": report["vela"]["npu_fraction"], "layers": s["arch_spec"]["layers"]}


def last_search_epoch(point_dir) -> dict | None:
    """The record of the last search epoch in POINT_DIR/search_state.json (None if it has none)."""
    path = Path(point_dir) / "search_state.json"
    if not path.is_file():
        return None
    epochs = [h for h in json.loads(path.read_text())["history"] if h["stage"] == "search"]
    return epochs[-1] if epochs else None


def search_end(workdir, name, report) -> dict:
    """The last search epoch's validation accuracies (decoded child, mixture), expected bytes and
    multiplier, and what selection measured, from WORKDIR/NAME."""
    last = last_search_epoch(workdir / name)
    selection = report["search"]["arch_spec"]["selection"]
    return {"name": name, "decoded_val_accuracy": last["val_accuracy"],
            "mixture_val_accuracy": last.get("val_accuracy_mixture"),
            "expected_bytes": last["expected_bytes"], "budget_bytes": last["budget_bytes"],
            "multiplier": last["multiplier"], "selected_val_accuracy": selection["val_accuracy"],
            "decoded_fitted_val_accuracy": selection.get("decoded_val_accuracy"),
            "candidates": selection["candidates"]}


def supernet_training(workdir) -> dict:
    """The shared supernet's epochs and their seconds, from its state in WORKDIR/supernet."""
    history = json.loads((workdir / "supernet" / "state.json").read_text())["history"]
    return {"supernet_epochs": len(history), "supernet_seconds": sum(epoch["seconds"] for epoch in history)}


def to_markdown(result) -> str:
    steps = result["steps"]
    lines = [
        f"# udc-search on {result['dataset']} ({result['accelerator']}): the Pareto run's searched points", "",
        f"Points: the UDC points of `{result['benchmark_command']}` (see pareto.md), read from its workdir by "
        f"`{result['command']}`.", "",
        f"{result['training_budget']} The supernet's {result['supernet_epochs']} epochs took "
        f"{result['supernet_seconds'] / 60:.1f} min in the run that trained it; the wall time below is each "
        "budget's own (search epoch, selection, fine-tune, export, Vela).", "",
        f"Step times, measured by this tool on {result['machine']} (load average before {result['load'][0]}, "
        f"after {result['load'][1]}): supernet training step {steps['supernet_step_s'] * 1e3:.0f} ms (sandwich "
        f"rule), search step {steps['search_step_s'] * 1e3:.0f} ms, plain backbone step "
        f"{steps['plain_step_s'] * 1e3:.0f} ms (batch {result['batch_size']}): training/plain ratio "
        f"{steps['supernet_step_s'] / steps['plain_step_s']:.2f}.", "",
        "| budget | budget B | Vela encoded B | within | int8 test acc | Keras test acc | "
        "selection estimate B | selection error | export estimate B | export error | exports | wall time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["budgets"]:
        lines.append(
            f"| {r['name']} | {r['budget_bytes']:,} | {r['vela_encoded_bytes']:,} | "
            f"{'yes' if r['within_budget'] else 'NO'} | {r['int8_accuracy']:.2%} | {r['keras_accuracy']:.2%} | "
            f"{r['selection_estimate_bytes']:,.0f} | {r['selection_estimate_error']:+.2%} | "
            f"{r['export_estimate_bytes']:,} | {r['export_estimate_error']:+.2%} | "
            f"{r['export_attempts']} | {r['wall_time_s'] / 60:.1f} min |")
    lines += ["", "At the end of each search epoch (before selection fits any child to the budget), validation "
              "accuracy of the decoded child (each choice at the median of its distribution) and of the soft "
              "mixture the search steers (softmax weights, no noise; BatchNorm recalibrated for each; searches "
              "recorded before the mixture's recalibration weighed its options as inference does drew Gumbel "
              "noise there, tools/remeasure_search_end.py measures them again); then what "
              "selection measured, after fitting each candidate to the budget minus the margin:", "",
              "| budget | decoded child | mixture | decoded - mixture | E[bytes] / budget | multiplier | "
              "decoded child fitted | selected (best of candidates) | candidates |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result["search_end"]:
        mixture = r["mixture_val_accuracy"]
        gap = "–" if mixture is None else f"{(r['decoded_val_accuracy'] - mixture) * 100:+.2f} points"
        fitted = r["decoded_fitted_val_accuracy"]
        lines.append(
            f"| {r['name']} | {r['decoded_val_accuracy']:.2%} | {'–' if mixture is None else f'{mixture:.2%}'} | "
            f"{gap} | {r['expected_bytes'] / r['budget_bytes']:.3f} | {r['multiplier']:.3f} | "
            f"{'–' if fitted is None else f'{fitted:.2%}'} | {r['selected_val_accuracy']:.2%} | "
            f"{r['candidates']} |")
    lines += ["", "Chosen layers (width/sparsity/bits):", ""]
    for r in result["budgets"]:
        lines.append(f"- {r['name']}: " + format_choices({l["name"]: l for l in r["layers"]}))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a finished udc-benchmark WORKDIR")
    parser.add_argument("--config", default="configs/fashion_mnist.py", help="the config it ran (for step times)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    points = {}
    for path in sorted((workdir / "points").glob("udc_*.json")):
        point = json.loads(path.read_text())
        points[point["name"]] = point
    if not points:
        sys.exit(f"tools/benchmark_search.py: no UDC points in {workdir / 'points'}; run udc-benchmark there first")
    reports = {name: json.loads((workdir / name / "report.json").read_text()) for name in points}
    budgets = sorted((budget_row(name, reports[name], points[name]) for name in points),
                     key=lambda r: r["budget_bytes"])
    first = reports[budgets[0]["name"]]
    dataset = first["dataset"]
    pareto = json.loads((ROOT / "benchmarks" / dataset / "pareto.json").read_text())
    if f"--workdir={args.workdir}" not in pareto["command"]:
        sys.exit(f"tools/benchmark_search.py: benchmarks/{dataset}/pareto.json was made by `{pareto['command']}`, "
                 f"not in {args.workdir}; pass that run's --workdir")
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    steps = step_times(args.config)
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    arch = first["search"]["arch_spec"]
    # Arch specs written before targets were objects name theirs "accelerator".
    result = {"dataset": dataset, "accelerator": arch.get("target") or arch["accelerator"],
              "command": " ".join(["python tools/benchmark_search.py", *sys.argv[1:]]),
              "benchmark_command": pareto["command"], "training_budget": pareto["training_budget"],
              "machine": describe_machine(), "load": [load_before, load_after], "steps": steps,
              "batch_size": steps.pop("batch_size"),
              **supernet_training(workdir), "budgets": budgets,
              "search_end": [search_end(workdir, row["name"], reports[row["name"]]) for row in budgets]}
    out = ROOT / "benchmarks" / dataset
    write_json_atomic(out / "udc.json", result)
    write_text_atomic(out / "udc.md", to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
