"""Accuracy against Vela cycles: latency-budget searches beside byte-budget searches and baselines.

    python tools/benchmark_latency.py runs/latency/udc_60kc runs/latency/udc_90kc ... \
        --points=runs/drift/points --output=benchmarks/fashion_mnist/latency

Reads each latency-budget search's WORKDIR/report.json (made by `udc-search
--config.budget_cycles=N`, on the trained supernet of the Pareto run) and the Pareto run's
points (`udc-benchmark`'s WORKDIR/points/*.json: baselines, byte-budget UDC points; the
controls are left out), and writes a table (.md, .json) and a chart (.png) of int8 test
accuracy against Vela's cycles for the target, with the front in cycles. With `--target` (for
latency searches on another target than the Pareto run's) each point's kept model.tflite is
compiled for that target.

MSPS searches (`--config.search.patterns='("dense","2:4")'` on an Ethos-U85) are told apart by their
workdir's name, `msps_*`, ASPS searches (kernel sizes searched too, `--config.search.kernel_sizes`) by
`asps_*`; the table lists the layers each search put in the 2:4 pattern and the convolutions' kernel
sizes (– for a search from before kernel sizes: the backbone's 3x3). With
`--reference=NAME` (e.g. pqat_2_4, the uniform 2:4 int8 baseline) the file also says, for each search
within 0.3 points of that point's accuracy or above it, what share of its cycles the search needs.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.machine import load_average  # noqa: E402
from udc.report.pareto import save_accuracy_chart  # noqa: E402


def latency_point(workdir: Path) -> dict:
    report = json.loads((workdir / "report.json").read_text())
    search = report["search"]
    return {"name": workdir.name, "kind": "udc_cycles", "accuracy": report["accuracy"]["int8_tflite"],
            "cycles": search["vela_cycles"], "encoded_bytes": search["vela_encoded_bytes"],
            "budget_cycles": search["budget_cycles"], "budget_bytes": search["budget_bytes"],
            "within_cycle_budget": search["within_cycle_budget"],
            "cycle_estimate_error": search["selection_cycles_error"],
            "export_attempts": search["export_attempts"], "wall_seconds": search["total_seconds"],
            "two_four_layers": [layer["name"] for layer in search["arch_spec"]["layers"]
                                if layer.get("pattern", "dense") == "2:4"],
            "kernel_sizes": [layer.get("kernel_size") for layer in search["arch_spec"]["layers"]
                             if layer["kind"] != "dense"]}


def pareto_run_points(folder: Path, target=None) -> tuple[list[dict], list[str]]:
    """The baselines and byte-budget UDC points of a Pareto run's points folder, and the names left out.

    With `target` (a udc Target other than the run's), each point's cycles and bytes are Vela's for that
    target, from the point's WORKDIR/<name>/model.tflite (or <name>.tflite); a point whose .tflite was not
    kept is left out.
    """
    points, missing = [], []
    for path in sorted(folder.glob("*.json")):
        p = json.loads(path.read_text())
        if p["kind"] not in ("baseline", "udc"):
            continue
        point = {k: p[k] for k in ("name", "kind", "accuracy", "cycles", "encoded_bytes")}
        if target is not None:
            kept = folder.parent / p["name"]
            model = next((f for f in (kept / "model.tflite", kept / f"{p['name']}.tflite") if f.is_file()), None)
            if model is None:
                missing.append(p["name"])
                continue
            compiled = target.compile(model.read_bytes())
            point.update(cycles=compiled.cycles, encoded_bytes=compiled.encoded_weight_bytes)
        points.append(point)
    return points, missing


def cycle_front(points) -> list[dict]:
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (p["cycles"], -p["accuracy"])):
        if p["accuracy"] > best:
            front.append(p)
            best = p["accuracy"]
    return front


def markdown(result) -> str:
    lines = ["# Accuracy against Vela cycles", "",
             f"Made with `{result['command']}`; load average before {result['load_before']}, after "
             f"{result['load_after']}. The latency searches: {', '.join(f'`{c}`' for c in result['searches'])}.", "",
             "Latency-budget searches (byte budget as stated; the cycle estimate is the cycle model's at selection "
             "against Vela's cycles of the export):", "",
             "| search | cycle budget | Vela cycles | within | estimate vs Vela | int8 test accuracy | Vela bytes "
             "| 2:4 layers | kernel sizes | exports | wall |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in result["latency_points"]:
        lines.append(f"| {p['name']} | {p['budget_cycles']:,} | {p['cycles']:,} | "
                     f"{'yes' if p['within_cycle_budget'] else 'NO'} | {p['cycle_estimate_error']:+.2%} | "
                     f"{100 * p['accuracy']:.2f} % | {p['encoded_bytes']:,} | "
                     f"{', '.join(p.get('two_four_layers', [])) or '–'} | {_kernel_sizes(p)} | {p['export_attempts']} | "
                     f"{p['wall_seconds'] / 60:.1f} min |")
    if result.get("missing"):
        lines += ["", f"Left out: {', '.join(result['missing'])} (the Pareto run kept no .tflite of these to compile for "
                  f"{result['target']})."]
    lines += ["", "Every point by cycles (front marked *):", "", "| point | kind | Vela cycles | int8 test accuracy "
              "| Vela bytes |", "|---|---|---|---|---|"]
    front = {p["name"] for p in cycle_front(result["points"])}
    for p in sorted(result["points"], key=lambda p: p["cycles"]):
        lines.append(f"| {p['name']}{' *' if p['name'] in front else ''} | {p['kind']} | {p['cycles']:,} | "
                     f"{100 * p['accuracy']:.2f} % | {p['encoded_bytes']:,} |")
    lines += filter_pruning_section(result["points"])
    lines += reference_section(result)
    return "\n".join(lines) + "\n"


def _kernel_sizes(p) -> str:
    sizes = p.get("kernel_sizes") or []
    return "–" if not sizes or None in sizes else "/".join(f"{k}x{k}" for k in sizes)


ISO_ACCURACY_POINTS = 0.3  # "at iso-accuracy": within this many points of the reference


def reference_section(result) -> list:
    """Each latency search's cycles as a share of the reference point's, where its accuracy is within
    `ISO_ACCURACY_POINTS` of the reference's or above; empty without `--reference`."""
    name = result.get("reference")
    if not name:
        return []
    reference = next(p for p in result["points"] if p["name"] == name)
    lines = ["", f"Against {name} ({100 * reference['accuracy']:.2f} %, {reference['cycles']:,} cycles, "
             f"{reference['encoded_bytes']:,} B), searches within {ISO_ACCURACY_POINTS} points of its accuracy or "
             "above it:", ""]
    close = [p for p in result["latency_points"] if p["accuracy"] >= reference["accuracy"] - ISO_ACCURACY_POINTS / 100]
    for p in sorted(close, key=lambda p: p["cycles"]):
        gap = 100 * (p["accuracy"] - reference["accuracy"])
        lines.append(f"- {p['name']}: {100 * p['accuracy']:.2f} % ({gap:+.2f} "
                     f"points) at {p['cycles']:,} cycles, {p['cycles'] / reference['cycles']:.0%} of {name}'s.")
    if not close:
        lines.append("- none.")
    return lines


def filter_pruning_section(points) -> list:
    """Aligned against unaligned filter pruning (the `filters_*` recipes of udc.workflows.baselines), per
    fraction and at equal accuracy on the aligned points' front; empty without such points."""
    by_name = {p["name"]: p for p in points}
    fractions = sorted({int(n.split("_")[1]) for n in by_name if n.startswith("filters_") and n.endswith("_aligned")
                        and n.replace("_aligned", "_unaligned") in by_name})
    if not fractions:
        return []
    lines = ["", "Filter pruning to widths aligned to the target against the plain fraction (same L1 pruning, same "
             "fine-tune):", "", "| filters kept | aligned: accuracy | cycles | unaligned: accuracy | cycles | "
             "aligned needs |", "|---|---|---|---|---|---|"]
    for f in fractions:
        a, u = by_name[f"filters_{f}_aligned"], by_name[f"filters_{f}_unaligned"]
        lines.append(f"| {f} % | {100 * a['accuracy']:.2f} % | {a['cycles']:,} | {100 * u['accuracy']:.2f} % | "
                     f"{u['cycles']:,} | {a['cycles'] / u['cycles']:.0%} of the cycles |")
    lines += ["", "At equal accuracy, on the aligned points' curve: the cycles the aligned front needs to reach each "
              "unaligned point's accuracy (linear between the two aligned points of the front around it, the "
              "cheapest aligned point's cycles below them; the front: aligned points no other aligned point beats "
              "in both accuracy and cycles):", ""]
    curve = cycle_front([by_name[f"filters_{f}_aligned"] for f in fractions])
    savings = []
    for f in fractions:
        u = by_name[f"filters_{f}_unaligned"]
        needed = cycles_at_accuracy(curve, u["accuracy"])
        if needed is None:
            lines.append(f"- filters_{f}_unaligned ({100 * u['accuracy']:.2f} %, {u['cycles']:,} cycles): outside the "
                         "aligned front's accuracies.")
            continue
        savings.append(1 - needed / u["cycles"])
        lines.append(f"- filters_{f}_unaligned ({100 * u['accuracy']:.2f} %, {u['cycles']:,} cycles): the aligned "
                     f"front reaches it at {needed:,.0f} cycles ({needed / u['cycles'] - 1:+.0%}).")
    if savings:
        lines += ["", f"Aligned against unaligned at equal accuracy: {np.mean(savings):.0%} fewer cycles on average "
                  f"(from {min(savings):.0%} to {max(savings):.0%}, {len(savings)} points)."]
    return lines


def cycles_at_accuracy(front, accuracy):
    """The cycles a front (sorted by cycles, accuracy rising) needs for `accuracy`: linear between the two
    front points around it; its cheapest point's cycles below its accuracies (an upper bound), None above."""
    for low, high in zip(front, front[1:]):
        if low["accuracy"] <= accuracy <= high["accuracy"]:
            share = (accuracy - low["accuracy"]) / max(high["accuracy"] - low["accuracy"], 1e-12)
            return low["cycles"] + share * (high["cycles"] - low["cycles"])
    return front[0]["cycles"] if front and accuracy <= front[0]["accuracy"] else None


def _style_group(p) -> str:
    if p["name"].startswith("filters_"):
        return "filters_aligned" if p["name"].endswith("_aligned") else "filters_unaligned"
    for group in ("msps", "asps"):
        if p["name"].startswith(group + "_"):
            return group
    return p["kind"]


def plot(points, path, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"baseline": ("s", "tab:gray", "baselines (tfmot recipes, uniform grid)"),
              "filters_aligned": ("^", "tab:green", "filter pruning, aligned widths"),
              "filters_unaligned": ("v", "tab:orange", "filter pruning, unaligned widths"),
              "udc": ("o", "tab:red", "UDC, byte budgets"), "udc_cycles": ("D", "tab:purple", "UDC, cycle budgets"),
              "msps": ("*", "tab:brown", "MSPS: UDC with dense/2:4 per layer, cycle budgets"),
              "asps": ("P", "tab:pink", "ASPS: MSPS with kernel sizes per layer, cycle budgets")}
    panels = [("cycles", 1000, "Vela NPU cycles per inference (thousands; dotted: the cycle budgets)", path)]
    if any(_style_group(p) in ("msps", "asps") for p in points):  # they are also about the bytes 2:4 costs
        panels.append(("encoded_bytes", 1024, "Vela encoded weight KiB", str(path).replace(".png", "_bytes.png")))
    for key, unit, xlabel, panel_path in panels:
        fig, ax = plt.subplots(figsize=(8, 5))
        for group, (marker, color, label) in styles.items():
            chosen = [p for p in points if _style_group(p) == group]
            if not chosen:
                continue
            ax.scatter([p[key] / unit for p in chosen], [100 * p["accuracy"] for p in chosen], marker=marker,
                       color=color, label=label, zorder=3)
            for p in chosen:
                ax.annotate(p["name"], (p[key] / unit, 100 * p["accuracy"]), fontsize=7, xytext=(4, -9),
                            textcoords="offset points")
        if key == "cycles":
            for p in points:
                if p["kind"] == "udc_cycles":
                    ax.axvline(p["budget_cycles"] / 1000, color="tab:purple", alpha=0.25, linestyle=":")
            front = cycle_front(points)
            ax.step([p["cycles"] / 1000 for p in front], [100 * p["accuracy"] for p in front], where="post",
                    color="tab:blue", alpha=0.6, label="front in cycles", zorder=2)
        save_accuracy_chart(fig, ax, panel_path, xlabel, title)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("searches", nargs="+", help="workdirs of udc-search runs with --config.budget_cycles")
    parser.add_argument("--points", required=True, help="the Pareto run's WORKDIR/points folder")
    parser.add_argument("--commands", default="", help="a file listing the commands of the searches, one per line")
    parser.add_argument("--target", default="", help="compile the Pareto run's points for this target (default: "
                        "take their cycles as the run measured them)")
    parser.add_argument("--title", default="Fashion-MNIST, fmnist_cnn, ethos-u55-128")
    parser.add_argument("--output", required=True, help="path without extension: writes .json, .md and .png")
    parser.add_argument("--reference", default="", help="a point to compare the searches with at iso-accuracy "
                        "(e.g. pqat_2_4)")
    args = parser.parse_args()
    before = load_average()
    latency = [latency_point(Path(w)) for w in args.searches]
    target = None
    if args.target:
        from udc.targets import get_target

        target = get_target(args.target)
    run_points, missing = pareto_run_points(Path(args.points), target)
    points = run_points + latency
    if args.reference and args.reference not in {p["name"] for p in points}:
        raise SystemExit(f"--reference {args.reference} is not one of the points; name one of: "
                         + ", ".join(sorted(p["name"] for p in points)))
    commands = Path(args.commands).read_text().splitlines() if args.commands else []
    result = {"command": "python " + " ".join([f"tools/{Path(__file__).name}"] + sys.argv[1:]),
              "searches": [c for c in commands if c.strip()], "load_before": before,
              "load_after": load_average(),
              "target": args.target or "the Pareto run's", "missing": missing, "reference": args.reference,
              "latency_points": latency, "points": points}
    write_json_atomic(Path(args.output + ".json"), result)
    write_text_atomic(Path(args.output + ".md"), markdown(result))
    plot(points, args.output + ".png", args.title)


if __name__ == "__main__":
    main()
