"""Vela's cycles of one layer as its channel counts grow one by one: the staircase of each target.

    python tools/channel_staircase.py --targets=ethos-u55-128,ethos-u65-256,ethos-u85-256 \
        --output=benchmarks/hardware/channel_staircase

An NPU computes output channels (and reads input channels) in blocks of its array; a channel
count just past a multiple of the block costs a whole extra pass. For each target this compiles
one layer alone (`udc.targets.layer_model`: input -> RELU -> layer at 14x14, dense random int8
weights) at every channel count from 1 to --max_channels and records Vela's cycles of the layer's
operator and its encoded weight bytes, for four series: a 3x3 convolution's output channels (input
fixed at --fixed_channels), its input channels (output fixed), a 3x3 depthwise convolution's
channels, and a dense layer's outputs (input fixed). From each series it derives the block of
the staircase (`staircase_period`) from the channel counts that use the array best
(`efficient_widths`), and from the blocks the alignment of each layer kind (`alignment_by_kind`).
Writes a table (.md), the raw series (.json) and a chart (.png).
"""

import argparse
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.machine import describe_machine, load_average  # noqa: E402
from udc.targets import get_target  # noqa: E402
from udc.targets.staircase import (  # noqa: E402
    MARGIN, SERIES, alignment_by_kind, efficient_widths, measure_series, staircase_period)


def markdown(result) -> str:
    lines = ["# Cycles of one layer as its channels grow", "",
             f"Made with `{result['command']}` on {result['machine']}; load average before {result['load_before']}, "
             f"after {result['load_after']}.", "",
             f"One layer compiled alone by Vela at every channel count from 1 to {result['max_channels']} (the other "
             f"channel count fixed at {result['fixed_channels']}; the dense layer's input {result['fixed_channels'] * 4}). "
             "Efficient widths: channel counts whose cycles per channel are at least "
             f"{result['margin']:.0%} below both neighbours'. Block: the smallest of them that divides at least two "
             "thirds of them (1: none does, no staircase).", "",
             "| target | series | efficient widths | block | cycles at block / block+1 |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        for name in SERIES:
            s = t["series"][name]
            c = [p["cycles"] for p in s["points"]]
            block = s["period"]
            lines.append(f"| {t['name']} | {name} | {', '.join(map(str, s['efficient_widths'])) or 'none'} | {block} | "
                         f"{c[block - 1]:,} / {c[block]:,} |")
    lines += ["", "Alignment by layer kind, derived (conv: lcm of conv output and conv input blocks; depthwise: lcm of "
              "depthwise and conv input; dense: dense output) and the one udc's target uses:", "",
              "| target | conv | depthwise | dense | used: conv | depthwise | dense |", "|---|---|---|---|---|---|---|"]
    for t in result["targets"]:
        d, u = t["derived_alignment"], t["alignment_used"]
        lines.append(f"| {t['name']} | {d['conv']} | {d['depthwise']} | {d['dense']} | {u['conv']} | {u['depthwise']} "
                     f"| {u['dense']} |")
    lines += ["", "Encoded weight bytes and cycles of every point: the .json beside this file; the chart: the .png."]
    return "\n".join(lines) + "\n"


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(result["targets"]), len(SERIES), figsize=(4 * len(SERIES), 3 * len(result["targets"])),
                             squeeze=False)
    for row, t in zip(axes, result["targets"]):
        for ax, name in zip(row, SERIES):
            pts = t["series"][name]["points"]
            ax.step([p["channels"] for p in pts], [p["cycles"] for p in pts], where="mid")
            block = t["series"][name]["period"]
            for edge in range(block, len(pts) + 1, block) if block > 1 else ():
                ax.axvline(edge + 0.5, color="0.85", lw=0.6, zorder=0)
            ax.set_title(f"{t['name']}: {name}", fontsize=9)
            ax.set_xlabel("channels")
            ax.set_ylabel("Vela cycles")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="ethos-u55-128,ethos-u65-256,ethos-u85-256")
    parser.add_argument("--max_channels", type=int, default=64)
    parser.add_argument("--fixed_channels", type=int, default=32)
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help="An efficient width's cycles per channel are this much below both neighbours'.")
    parser.add_argument("--output", default="benchmarks/hardware/channel_staircase")
    args = parser.parse_args()
    load_before = load_average()
    targets = []
    for name in args.targets.split(","):
        target = get_target(name)
        entry = {"name": name, "series": {}}
        for series in SERIES:
            print(f"{name}: {series} ...", flush=True)
            points = measure_series(target, series, range(1, args.max_channels + 1), args.fixed_channels)
            widths = efficient_widths(points, args.margin)
            entry["series"][series] = {"points": points, "efficient_widths": widths,
                                       "period": staircase_period(widths)}
        entry["derived_alignment"] = alignment_by_kind({s: entry["series"][s]["period"] for s in SERIES})
        entry["alignment_used"] = {kind: target.channel_alignment(kind) for kind in ("conv", "depthwise", "dense")}
        targets.append(entry)
    result = {"command": " ".join(["python tools/channel_staircase.py", *sys.argv[1:]]),
              "machine": describe_machine(), "load_before": load_before,
              "load_after": load_average(), "max_channels": args.max_channels,
              "fixed_channels": args.fixed_channels, "margin": args.margin, "targets": targets}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out.with_suffix(".json"), result)
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    plot(result, out.with_suffix(".png"))
    print(markdown(result))


if __name__ == "__main__":
    main()
