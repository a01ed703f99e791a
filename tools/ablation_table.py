"""The search's ablation at one budget, as a table: what each part of the training is worth.

    python tools/ablation_table.py "full=runs/benchmark_v4/udc_8kb" \
        "no warm start=runs/ablation/no_warm_start" "soft mixture only=runs/ablation/soft" \
        --output=benchmarks/fashion_mnist/ablation.md [--note="how the rows were made"]

Each LABEL=WORKDIR is a finished udc-search (or udc-benchmark budget) workdir. Per row: the
supernet's largest and smallest child on validation after its training, the argmax child
after the search, the child that ships at selection (before fine-tuning), and the exported
model: int8 .tflite test accuracy, Vela's encoded bytes and the budget's wall time. The
rows are read from each workdir's report.json; the commands that made them go in --note.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.fileio import write_text_atomic  # noqa: E402


def row(label, workdir) -> str:
    path = Path(workdir) / "report.json"
    if not path.is_file():
        sys.exit(f"tools/ablation_table.py: {path} is missing; finish the search in {workdir} first")
    report = json.loads(path.read_text())
    search = report["search"]
    history = search["history"]
    supernet = [h for h in history if h["stage"] == "supernet"]
    searched = [h for h in history if h["stage"] == "search"]
    selection = search["arch_spec"]["selection"]
    trained = (f"{supernet[-1]['val_accuracy_largest']:.2%} / {supernet[-1]['val_accuracy_smallest']:.2%}"
               if supernet else "(shared supernet)")
    return (f"| {label} | {trained} | {searched[-1]['val_accuracy']:.2%} | {selection['val_accuracy']:.2%} | "
            f"{report['accuracy']['int8_tflite']:.2%} | {search['vela_encoded_bytes']:,} | "
            f"{search['export_attempts']} | {search['total_seconds'] / 60:.1f} min |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help="LABEL=WORKDIR")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--note", default="", help="markdown put above the table (the commands, the machine)")
    args = parser.parse_args()
    pairs = [r.split("=", 1) for r in args.rows]
    if any(len(p) != 2 for p in pairs):
        parser.error("give each row as LABEL=WORKDIR")
    lines = ["# Ablation of the search's training at one budget", "",
             "Made with `python tools/ablation_table.py " + " ".join(f'"{r}"' for r in args.rows)
             + f" --output={args.output}`.", ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["| row | supernet val: largest / smallest child | argmax child val after search | shipped child "
              "val at selection | int8 test | Vela B | exports | wall of the run |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [row(label, workdir) for label, workdir in pairs]
    write_text_atomic(args.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
