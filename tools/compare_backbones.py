"""Which backbone wins at which size: the UDC points of Pareto benchmarks of several backbones on one dataset.

    python tools/compare_backbones.py fmnist_cnn=benchmarks/fashion_mnist/pareto.json \
        resnet8=benchmarks/fashion_mnist_resnet8/pareto.json --output=benchmarks/fashion_mnist_resnet8/versus

Reads each `udc-benchmark` pareto.json (LABEL=PATH), and writes a table (.md, .json) and a chart (.png) of int8
test accuracy against Vela encoded bytes: every UDC point of each backbone, its int8 reference (ptq_int8, the
whole backbone at 8 bits), and per budget the backbone that is more accurate there. The benchmarks keep their own
commands and load averages; this script only reads them.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.pareto import save_accuracy_chart  # noqa: E402


def udc_points(pareto: dict) -> dict:
    """{budget name (e.g. '16kb'): point} of a benchmark's UDC points."""
    return {p["name"].removeprefix("udc_"): p for p in pareto["points"] if p["kind"] == "udc"}


def reference(pareto: dict):
    return next((p for p in pareto["points"] if p["name"] == "ptq_int8"), None)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", nargs="+", help="LABEL=path/to/pareto.json, one per backbone")
    parser.add_argument("--output", required=True, help="path prefix of the .md, .json and .png written")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.benchmarks:
        label, _, path = item.partition("=")
        runs[label] = json.loads(Path(path).read_text()) | {"path": path}
    budgets = sorted({b for run in runs.values() for b in udc_points(run)}, key=lambda b: float(b[:-2]))
    rows = []
    for budget in budgets:
        points = {label: udc_points(run).get(budget) for label, run in runs.items()}
        present = {label: p for label, p in points.items() if p is not None}
        best = max((p["accuracy"] for p in present.values()), default=None)
        leaders = [label for label, p in present.items() if p["accuracy"] == best]
        winner = None if len(present) < 2 else leaders[0] if len(leaders) == 1 else "tie"
        rows.append({"budget": budget, "winner": winner,
                     **{label: None if p is None else {"accuracy": p["accuracy"], "encoded_bytes": p["encoded_bytes"],
                                                       "cycles": p["cycles"]} for label, p in points.items()}})
    references = {label: reference(run) for label, run in runs.items()}
    result = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv or sys.argv[1:])),
              "sources": {label: run["path"] for label, run in runs.items()},
              "loads": {label: run["load_average"] for label, run in runs.items()},
              "rows": rows, "references": references}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output.with_suffix(".json"), result)
    write_text_atomic(output.with_suffix(".md"), markdown(result, runs))
    chart(result, runs, output.with_suffix(".png"))


def markdown(result, runs) -> str:
    labels = list(runs)
    lines = ["# Which backbone wins at which size", "",
             f"Made with `{result['command']}` from the Pareto benchmarks "
             + ", ".join(f"{label} (`{path}`, load before and after {result['loads'][label]})"
                         for label, path in result["sources"].items()) + ".", "",
             "| budget | " + " | ".join(f"{label} accuracy | {label} bytes | {label} cycles" for label in labels)
             + " | more accurate |",
             "|---|" + "---|---|---|" * len(labels) + "---|"]
    for row in result["rows"]:
        cells = []
        for label in labels:
            p = row[label]
            cells += ["–"] * 3 if p is None else [f"{p['accuracy']:.2%}", f"{p['encoded_bytes']:,}", f"{p['cycles']:,}"]
        lines.append(f"| {row['budget']} | " + " | ".join(cells) + f" | {row['winner'] or '–'} |")
    lines += ["", "Each backbone whole at 8 bits (ptq_int8): " + "; ".join(
        f"{label} {p['accuracy']:.2%} at {p['encoded_bytes']:,} B, {p['cycles']:,} cycles"
        for label, p in result["references"].items() if p is not None) + "."]
    return "\n".join(lines) + "\n"


def chart(result, runs, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, run in runs.items():
        points = sorted(udc_points(run).values(), key=lambda p: p["encoded_bytes"])
        line, = ax.plot([p["encoded_bytes"] / 1024 for p in points], [100 * p["accuracy"] for p in points],
                        "o-", label=f"{label} (UDC)")
        ref = result["references"][label]
        if ref is not None:
            ax.plot(ref["encoded_bytes"] / 1024, 100 * ref["accuracy"], "s", color=line.get_color(),
                    label=f"{label} int8 (ptq_int8)")
    ax.set_xscale("log")
    save_accuracy_chart(fig, ax, path, "Vela encoded weight KiB (log)", "UDC per backbone")


if __name__ == "__main__":
    main()
