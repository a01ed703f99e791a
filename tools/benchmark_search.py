"""Runs udc-search on Fashion-MNIST at several budgets and records benchmarks/<dataset>/udc.{json,md}.

    python tools/benchmark_search.py [--budgets 6 12 24 48] [--config=configs/fashion_mnist.py]
        [--workdir=runs/search_fashion_mnist] [--accelerator=ethos-u55-128]

The budgets share one float model and one trained supernet (in WORKDIR/float and
WORKDIR/supernet). Per budget: int8 accuracy of the .tflite, Vela encoded bytes against the budget, the size
model's error against Vela at selection (supernet weights) and on the exported weights,
wall time. Once: the supernet's training and search step times beside the plain
backbone's training step (same batch, measured back to back). Results are
written after every budget, so an interrupted benchmark keeps the budgets it finished.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from udc.machine import describe_machine as machine  # noqa: E402
from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402

SIZE_FIGURES = (("selection", "estimate"), ("selection", "codec"), ("export", "estimate"), ("export", "plain_codec"))


def step_times(config_path, steps=30):
    """Median seconds of a plain backbone step, a supernet training step and a search step, back to back."""
    code = f"""
import json, sys, time, tempfile
sys.path.insert(0, {str(ROOT)!r})
import numpy as np
from ml_collections import config_flags
from udc.compat import keras, tf
from udc.data import load_splits
from udc.models import build_backbone
from udc.search import SupernetSearch
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
print(json.dumps({{"plain_step_s": (p1 + p2) / 2, "supernet_step_s": (t1 + t2) / 2, "search_step_s": (s1 + s2) / 2}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def to_markdown(result) -> str:
    lines = [
        f"# udc-search on {result['dataset']} ({result['accelerator']})", "",
        f"Command per budget: `{result['command']}`; {result['machine']}; "
        f"load average {result['load_average_start']} at the start (the cores were shared).", "",
        f"Supernet training step {result['steps']['supernet_step_s'] * 1e3:.0f} ms, search step "
        f"{result['steps']['search_step_s'] * 1e3:.0f} ms, plain backbone step "
        f"{result['steps']['plain_step_s'] * 1e3:.0f} ms (batch {result['batch_size']}): "
        f"training/plain ratio {result['steps']['ratio']:.2f}. The budgets share one float model and one "
        "trained supernet (the first budget trains them; its wall time includes that).", "",
        "| budget KiB | budget B | Vela encoded B | within | int8 test acc | Keras test acc | "
        "selection estimate B | selection error | export estimate B | export error | exports | wall time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["budgets"]:
        if "error" in r:
            lines.append(f"| {r['budget_kb']:g} | | | failed: {r['error']} | | | | | | | | {r['wall_time_s'] / 60:.1f} min |")
            continue
        lines.append(
            f"| {r['budget_kb']:g} | {r['budget_bytes']:,} | {r['vela_encoded_bytes']:,} | "
            f"{'yes' if r['within_budget'] else 'NO'} | {r['int8_accuracy']:.2%} | {r['keras_accuracy']:.2%} | "
            f"{r['selection_estimate_bytes']:,.0f} | {r['selection_estimate_error']:+.2%} | "
            f"{r['export_estimate_bytes']:,} | {r['export_estimate_error']:+.2%} | "
            f"{r['export_attempts']} | {r['wall_time_s'] / 60:.1f} min |")
    lines += ["", "Chosen layers (width/sparsity/bits):", ""]
    for r in result["budgets"]:
        if "layers" in r:
            lines.append(f"- {r['budget_kb']:g} KiB: " + ", ".join(
                f"{l['name']} {l['width']}/{l['sparsity']:.0%}/{l['bits']}b" for l in r["layers"]))
    if result.get("not_run"):
        lines += ["", f"Not run (time ran out): {', '.join(f'{b:g} KiB' for b in result['not_run'])}."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/fashion_mnist.py")
    parser.add_argument("--workdir", default="runs/search_fashion_mnist")
    parser.add_argument("--accelerator", default="ethos-u55-128")
    parser.add_argument("--budgets", type=float, nargs="+", default=[6, 12, 24, 48])
    args = parser.parse_args()
    shared = (f"--config.search.float_model={args.workdir}/float/model.keras "
              f"--config.search.supernet={args.workdir}/supernet")
    command = (f"udc-search --config={args.config} --config.budget_kb=K --config.accelerator={args.accelerator} "
               f"{shared} --workdir={args.workdir}/K")
    result = {"dataset": None, "accelerator": args.accelerator, "command": command, "machine": machine(),
              "load_average_start": " ".join(f"{v:.1f}" for v in os.getloadavg()), "budgets": [],
              "not_run": list(args.budgets)}
    steps = step_times(args.config)
    steps["ratio"] = steps["supernet_step_s"] / steps["plain_step_s"]
    result["steps"] = steps
    print(f"step times: {steps}", flush=True)
    out = None
    for budget in args.budgets:
        workdir = ROOT / args.workdir / f"{budget:g}"
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", "from udc.cli.search import run; run()", f"--config={args.config}",
               f"--config.budget_kb={budget:g}", f"--config.accelerator={args.accelerator}", *shared.split(),
               f"--workdir={workdir}"]
        start = time.time()
        with open(workdir / "log.txt", "a") as log:
            status = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.time() - start
        row = {"budget_kb": budget, "wall_time_s": round(wall, 1)}
        if status == 0:
            report = json.loads((workdir / "report.json").read_text())
            s = report["search"]
            result["dataset"] = report["dataset"]
            result["batch_size"] = report["search"]["arch_spec"].get("batch_size")
            row.update({
                "budget_bytes": s["budget_bytes"], "vela_encoded_bytes": s["vela_encoded_bytes"],
                "within_budget": s["within_budget"], "int8_accuracy": report["accuracy"]["int8_tflite"],
                "keras_accuracy": report["accuracy"]["keras"],
                **{f"{stage}_{figure}_{unit}": s[f"{stage}_{figure}_{unit}"] for stage, figure in SIZE_FIGURES
                   for unit in ("bytes", "error")},
                "export_attempts": s["export_attempts"], "search_step_s": s["search_step_seconds"],
                "npu_fraction": report["vela"]["npu_fraction"], "layers": s["arch_spec"]["layers"],
            })
        else:
            tail = (workdir / "log.txt").read_text().strip().splitlines()[-1:]
            row["error"] = " ".join(tail)[:200]
        result["budgets"].append(row)
        result["not_run"].remove(budget)
        print(json.dumps({k: v for k, v in row.items() if k != "layers"}), flush=True)
        result["dataset"] = result["dataset"] or "fashion_mnist"
        result["batch_size"] = result.get("batch_size") or 128
        out = ROOT / "benchmarks" / result["dataset"]
        write_json_atomic(out / "udc.json", result)
        write_text_atomic(out / "udc.md", to_markdown(result))
    print(f"wrote {out}/udc.json and .md")


if __name__ == "__main__":
    main()
