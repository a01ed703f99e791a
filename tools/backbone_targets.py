"""Every backbone searched end to end on every Ethos-U target of issue 13: budgets met, operators on the NPU.

    python tools/backbone_targets.py --vww_dir=/path/to/vww --workdir=runs/backbone_targets
    python tools/backbone_targets.py --only=ds_cnn:ethos-u55-128 --set=search.supernet_epochs=1   # one combination

For each backbone (fmnist_cnn and resnet8 on Fashion-MNIST, ds_cnn on the synthetic keyword set, mobilenet_v1 on
the image folder --vww_dir; without it mobilenet_v1 is skipped, with the reason printed) and each target, runs a
short `udc-search` (the epochs of SHORT_RUNS) under the backbone's byte budget and its cycle budget for that target
into --workdir/<backbone>/<target>, the float model shared by a backbone's targets. A finished run is not run
again (udc-search gives its report at once) and an interrupted one resumes, so the tool can be rerun after a stop.
Writes --output.md and --output.json: per combination the budgets, Vela's encoded bytes and cycles, the share of
operators on the NPU, the int8 test accuracy and whether both budgets were met, with this command line and the
load average before and after.
"""

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's udc, not an installed one

from absl import app, flags  # noqa: E402

from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.machine import describe_machine  # noqa: E402

TARGETS = ("ethos-u55-128", "ethos-u65-256", "ethos-u85-256")
# Per backbone: its config, its byte budget (KiB) and a cycle budget per target. The full backbones (int8, dense,
# random weights) take by Vela on U55-128 / U65-256 / U85-256: fmnist_cnn 335,545 / 305,291 / 336,492 cycles,
# ds_cnn 94,829 / 61,257 / 56,794, resnet8 175,121 / 124,903 / 116,773, mobilenet_v1 (96x96x3, 2 classes)
# 367,862 / 295,489 / 306,788. The cycle budgets are 60 % of those for ds_cnn, resnet8 and mobilenet_v1; for
# fmnist_cnn, the U55's and U85's are budgets its latency searches met (benchmarks/fashion_mnist/latency*.md), the
# U65's the U55's scaled by the full model's cycles.
BACKBONES = {
    "fmnist_cnn": {"config": "configs/fashion_mnist.py", "budget_kb": 16.0,
                   "budget_cycles": {"ethos-u55-128": 90000, "ethos-u65-256": 82000, "ethos-u85-256": 80000}},
    "ds_cnn": {"config": "configs/kws_ds_cnn.py", "budget_kb": 16.0,
               "budget_cycles": {"ethos-u55-128": 57000, "ethos-u65-256": 37000, "ethos-u85-256": 34000}},
    "resnet8": {"config": "configs/fashion_mnist_resnet8.py", "budget_kb": 24.0,
                "budget_cycles": {"ethos-u55-128": 105000, "ethos-u65-256": 75000, "ethos-u85-256": 70000}},
    "mobilenet_v1": {"config": "configs/vww_mobilenet.py", "budget_kb": 64.0,
                     "budget_cycles": {"ethos-u55-128": 220000, "ethos-u65-256": 177000, "ethos-u85-256": 184000}},
}
# Short runs: every stage, a fraction of each config's epochs (config keys, as --config.KEY=VALUE).
SHORT_RUNS = {
    "fmnist_cnn": {"train.epochs": 2, "search.supernet_epochs": 1, "search.search_epochs": 1,
                   "search.finetune_epochs": 1},
    "ds_cnn": {"train.epochs": 20, "search.supernet_epochs": 10, "search.search_epochs": 4,
               "search.finetune_epochs": 5},
    "resnet8": {"train.epochs": 2, "search.supernet_epochs": 1, "search.search_epochs": 1,
                "search.finetune_epochs": 1},
    # Widths in powers of two: at every multiple of 16 its 256-channel pointwise pair has 256 (input, output) cells,
    # 256 probes of the whole network at each byte level for the cycle tables of each target.
    "mobilenet_v1": {"train.epochs": 3, "search.supernet_epochs": 1, "search.search_epochs": 1,
                     "search.finetune_epochs": 1, "search.widths": "(16,32,64,128,256)"},
}

flags.DEFINE_string("workdir", "runs/backbone_targets", "Where each search runs, as <backbone>/<target>.")
flags.DEFINE_string("output", "benchmarks/backbones/targets", "The table's path without suffix: .md and .json.")
flags.DEFINE_string("vww_dir", "", "The image folder of mobilenet_v1 (class folders, e.g. person and "
                    "non_person); empty: mobilenet_v1 is skipped.")
flags.DEFINE_list("only", [], "Only these backbone:target combinations, e.g. ds_cnn:ethos-u55-128.")
flags.DEFINE_multi_string("set", [], "KEY=VALUE for every run's config (--config.KEY=VALUE), after the short "
                          "run's own, e.g. --set=search.max_widths='(16,16,16,16,16)'.")
FLAGS = flags.FLAGS


def load_average() -> str:
    return Path("/proc/loadavg").read_text().strip()


def combinations() -> list:
    """(backbone, target) pairs to run, in table order; SystemExit naming a pair --only gives that does not exist."""
    every = [(backbone, target) for backbone in BACKBONES for target in TARGETS]
    if not FLAGS.only:
        return every
    chosen = [tuple(entry.split(":", 1)) for entry in FLAGS.only]
    unknown = [":".join(pair) for pair in chosen if pair not in every]
    if unknown:
        raise SystemExit(f"tools/backbone_targets.py: unknown --only {', '.join(unknown)}; give backbone:target of "
                         f"{', '.join(BACKBONES)} and {', '.join(TARGETS)}")
    return [pair for pair in every if pair in chosen]


def config_values(backbone: str, target: str) -> dict:
    """The config keys of one combination's udc-search: budgets, target, short run, then --set."""
    plan = BACKBONES[backbone]
    values = {"accelerator": target, "budget_kb": plan["budget_kb"], "budget_cycles": plan["budget_cycles"][target],
              "search.float_model": str(Path(FLAGS.workdir).resolve() / backbone / "float" / "model.keras"),
              **SHORT_RUNS[backbone]}
    if backbone == "mobilenet_v1":
        values["data_dir"] = str(Path(FLAGS.vww_dir).resolve())
    for entry in FLAGS.set:
        key, separator, value = entry.partition("=")
        if not separator:
            raise SystemExit(f"tools/backbone_targets.py: --set takes KEY=VALUE, got {entry!r}")
        values[key] = value
    return values


def run_search(backbone: str, target: str) -> dict:
    """One combination's udc-search (resumed or finished ones included) and its row of the table."""
    workdir = Path(FLAGS.workdir).resolve() / backbone / target
    values = config_values(backbone, target)
    arguments = [f"--config={BACKBONES[backbone]['config']}",
                 *(f"--config.{key}={value}" for key, value in values.items()), f"--workdir={workdir}"]
    row = {"backbone": backbone, "target": target, "budget_kb": float(values["budget_kb"]),
           "budget_cycles": int(values["budget_cycles"]), "command": shlex.join(["udc-search", *arguments])}
    print(f"{backbone} on {target}: {row['command']}", flush=True)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(workdir.parent / f"{target}.log", "a") as log:  # beside the workdir, which udc-search locks
        result = subprocess.run([sys.executable, "-c", "from udc.cli.search import run; run()", *arguments],
                                cwd=ROOT, stdout=log, stderr=subprocess.PIPE, text=True)
        log.write(result.stderr)
    row["wall_seconds"] = time.perf_counter() - started
    if result.returncode:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        row["error"] = lines[-1] if lines else f"exit status {result.returncode}"
        print(f"  failed: {row['error']}", flush=True)
        return row
    report = json.loads((workdir / "report.json").read_text())
    vela, search = report["vela"], report["search"]
    row.update(vela_bytes=vela["encoded_weight_bytes"], cycles=vela["cycles"], npu_fraction=vela["npu_fraction"],
               cpu_ops=vela["cpu_op_names"], accuracy=report["accuracy"]["int8_tflite"], dataset=report["dataset"],
               within_budgets=search["within_budget"] and search.get("within_cycle_budget", True),
               search_seconds=search["total_seconds"])
    print(f"  {row['vela_bytes']:,} B, {row['cycles']:,} cycles, {row['npu_fraction']:.0%} NPU, "
          f"{100 * row['accuracy']:.2f} %", flush=True)
    return row


def markdown(result) -> str:
    lines = ["# Every backbone on every target", "",
             f"Made with `{result['command']}` on {result['machine']}; `cat /proc/loadavg` before: "
             f"`{result['load_before']}`, after: `{result['load_after']}`.", "",
             "Short udc-search runs (each row's command in targets.json): budgets in KiB of Vela-encoded weights and "
             "in NPU cycles; Vela's figures of the export; int8 test accuracy of the .tflite.", "",
             "| backbone | target | budget | Vela bytes | cycles | NPU ops | int8 accuracy | within budgets | search wall |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        budget = f"{row['budget_kb']:g} KiB, {row['budget_cycles']:,} cycles"
        if "skipped" in row or "error" in row:
            reason = f"skipped: {row['skipped']}" if "skipped" in row else f"failed: {row['error']}"
            lines.append(f"| {row['backbone']} | {row['target']} | {budget} | {reason} ||||||")
            continue
        cpu = f" (CPU: {', '.join(row['cpu_ops'])})" if row["cpu_ops"] else ""
        lines.append(f"| {row['backbone']} | {row['target']} | {budget} | {row['vela_bytes']:,} | {row['cycles']:,} | "
                     f"{row['npu_fraction']:.0%}{cpu} | {100 * row['accuracy']:.2f} % | "
                     f"{'yes' if row['within_budgets'] else 'NO'} | {row['search_seconds'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    result = {"command": shlex.join(["python", "tools/backbone_targets.py", *sys.argv[1:]]),
              "machine": describe_machine(), "load_before": load_average(), "rows": []}
    for backbone, target in combinations():
        if backbone == "mobilenet_v1" and not FLAGS.vww_dir:
            reason = "no --vww_dir (a folder of images in class folders) given"
            print(f"{backbone} on {target}: skipped, {reason}", flush=True)
            result["rows"].append({"backbone": backbone, "target": target, "skipped": reason,
                                   "budget_kb": BACKBONES[backbone]["budget_kb"],
                                   "budget_cycles": BACKBONES[backbone]["budget_cycles"][target]})
            continue
        result["rows"].append(run_search(backbone, target))
    result["load_after"] = load_average()
    output = Path(FLAGS.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output.with_suffix(".json"), result)
    write_text_atomic(output.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    app.run(main)
