"""The cascade's report: JSON, markdown and a PNG plot of accuracy against average cost."""

import io
from pathlib import Path

from udc.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from udc.report.machine import describe_machine


def _pct(x) -> str:
    return f"{100 * x:.2f} %"


def _cost(value, metric) -> str:
    return f"{value:,.0f} cycles" if metric == "vela_cycles" else f"{value:.4f} ms"


def markdown(report: dict, title: str = "Flexible ensemble with early exit") -> str:
    metric, chosen, full = report["cost_metric"], report["chosen"], report["full_ensemble"]
    metrics = list(report["cost_units"])
    lines = [f"# {title}", ""]
    if report.get("command"):
        lines += ["Made with:", "", "```", report["command"], "```", ""]
    lines += [f"Machine: {report.get('machine', describe_machine())}.", "",
              f"Dataset `{report['dataset']['name']}`: {report['dataset']['val_size']} validation images "
              f"(thresholds chosen here), {report['dataset']['test_size']} test images (reported here). "
              f"Exit rule `{report['rule']}`, members ordered by `{metric}`"
              + (f" on `{report['accelerator']}`" if report.get("accelerator") else "") + ".", ""]
    combination = report.get("combination", {"kind": "average"})
    if combination["kind"] == "log_linear":
        weights = "; ".join(", ".join(f"{w:.2f}" for w in stage) for stage in combination["stage_weights"])
        lines += ["Each stage answers with the log-linear pool of its members, weights fitted on validation "
                  f"(stage by stage: {weights}); a stage whose pool was less accurate there than one of its "
                  "members answers with that member alone.", ""]
    else:
        lines += ["Each stage answers with the plain average of its members.", ""]
    goal = report["goal"]
    goal_text = " and ".join(t for t in (
        goal["max_drop_points"] is not None and f"accuracy drop from the full ensemble <= {goal['max_drop_points']} points (validation)",
        goal["max_cost"] is not None and f"average cost <= {goal['max_cost']:,.6g}"
        + (f" ({goal['max_cost_ratio']:.0%} of the full ensemble's)" if goal.get("max_cost_ratio") else ""),
        goal.get("flash_peer") and f"below the cost of its flash peer {goal['flash_peer']['name']} (the most "
        f"accurate single model on validation within the cascade's flash: {goal['flash_peer']['flash_kib']:.1f} KiB, "
        f"{goal['flash_peer']['cost']:,.6g}, {100 * goal['flash_peer']['val_accuracy']:.2f} %)") if t)
    lines += [f"Goal: {goal_text}.", ""]
    selection = report.get("member_selection")
    if selection:
        lines += [f"Members chosen from a pool of {len(selection['pool'])} ({', '.join(selection['pool'])}) by greedy "
                  "forward selection on validation: each step adds the model that most raises the area under the "
                  f"cascade's accuracy-cost front over average costs 0..{selection['cost_range']:,.0f} "
                  f"(udc.ensemble.selection): " + ", ".join(
                      f"{step['added']} (area {step['area']:.4f})" for step in selection["steps"]) + ".", ""]
    storage = report.get("storage")
    lines += ["## Members (cheapest first)", "",
              "| stage | member | " + " | ".join(f"cost ({report['cost_units'][k]})" for k in metrics)
              + (" | Vela encoded B | flash KiB" if storage else "") + " | val acc | test acc |",
              "|---|---|" + "---|" * len(metrics) + ("---|---|" if storage else "") + "---|---|"]
    for i, s in enumerate(report["members"]):
        stored = f" | {s['storage']['encoded_bytes']:,} | {s['storage']['flash_kib']:.1f}" if storage else ""
        lines.append(f"| {i + 1} | {s['name']} | " + " | ".join(_cost(s["cost"][k], k) for k in metrics)
                     + f"{stored} | {_pct(s['val_accuracy'])} | {_pct(s['test_accuracy'])} |")
    total = f" | {storage['encoded_bytes']:,} | {storage['flash_kib']:.1f}" if storage else ""
    lines.append("| all | full ensemble | " + " | ".join(_cost(full["cost"][k], k) for k in metrics)
                 + f"{total} | {_pct(full['val_accuracy'])} | {_pct(full['test_accuracy'])} |")
    ratio = chosen["test_cost_ratio_vs_full_ensemble"]
    lines += ["", "## Chosen operating point", "",
              f"- thresholds: {', '.join(f'{t:.4f}' for t in chosen['thresholds'])} (stages 1..{len(chosen['thresholds'])}; the last stage always answers)",
              f"- test accuracy: **{_pct(chosen['test_accuracy'])}** (full ensemble {_pct(full['test_accuracy'])}, "
              f"drop {chosen['test_drop_points_vs_full_ensemble']:.2f} points); validation {_pct(chosen['val_accuracy'])}",
              "- test average cost: " + "; ".join(
                  f"**{_cost(chosen['test_average_cost'][k], k)}** = {100 * ratio[k]:.1f} % of the full ensemble"
                  for k in metrics),
              "- fraction of test inputs exiting at each stage: "
              + ", ".join(f"stage {i + 1}: {100 * f:.1f} %" for i, f in enumerate(chosen["test_exit_fractions"]))]
    if storage:
        lines.append(f"- stored on the device: all {storage['members']} members, {storage['encoded_bytes']:,} B of "
                     f"encoded weights, {storage['flash_kib']:.1f} KiB of flash (Vela), whatever share of inputs "
                     "reaches each")
    best = chosen["best_single_member_at_or_below_cost"]
    lines.append(f"- most accurate single member at or below this average cost: {best['name']}, "
                 f"test {_pct(best['test_accuracy'])}; the cascade "
                 + ("beats it" if chosen["beats_best_single_member_at_or_below_cost"] else "does **not** beat it"))
    if report["versus_single_members"]:
        lines += ["", "## Cascade against each single member at the same budget", "",
                  "Cascade thresholds chosen on validation for the best accuracy at an average cost "
                  "no higher than the member's.", "",
                  "| member | member cost | member test acc | cascade test acc | cascade test cost |",
                  "|---|---|---|---|---|"]
        for v in report["versus_single_members"]:
            lines.append(f"| {v['member']} | {_cost(v['member_cost'][metric], metric)} | "
                         f"{_pct(v['member_test_accuracy'])} | {_pct(v['cascade_test_accuracy'])} | "
                         f"{_cost(v['cascade_test_average_cost'][metric], metric)} |")
    if report.get("goals"):
        lines += ["", "## Benchmark goals", ""] + [f"- {g}" for g in report["goals"]]
    lines += ["", f"Threshold sweep: {report['sweep']['points']} settings on validation, "
              f"{report['sweep']['pareto_points']} on the Pareto front (plotted on test).", ""]
    return "\n".join(lines)


def plot_png(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    metric, unit = report["cost_metric"], report["cost_units"][report["cost_metric"]]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    curve = report["curve"]
    ax.plot([c["test_average_cost"][metric] for c in curve], [100 * c["test_accuracy"] for c in curve],
            "-", color="tab:blue", lw=1.2, label="cascade (val-Pareto thresholds, on test)")
    # Members are numbered by stage at their points and named in the legend: the names of members close in
    # cost (one architecture of other seeds shares its cost) would print over each other.
    for i, s in enumerate(report["members"]):
        ax.plot(s["cost"][metric], 100 * s["test_accuracy"], "s", color="tab:gray")
        ax.annotate(str(i + 1), (s["cost"][metric], 100 * s["test_accuracy"]), textcoords="offset points",
                    xytext=(5, -4 - 8 * (i % 2)), fontsize=8)
    full = report["full_ensemble"]
    ax.plot(full["cost"][metric], 100 * full["test_accuracy"], "D", color="tab:green", label="full ensemble")
    chosen = report["chosen"]
    ax.plot(chosen["test_average_cost"][metric], 100 * chosen["test_accuracy"], "*", color="tab:red",
            ms=14, label="chosen operating point")
    ax.plot([], [], "s", color="tab:gray", label="single members, by stage:")
    for i, s in enumerate(report["members"]):
        ax.plot([], [], " ", label=f"{i + 1}: {s['name']}")
    ax.set_xlabel(f"average cost per input ({metric}, {unit})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Early-exit cascade, rule {report['rule']} ({report['dataset']['name']})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_report(report: dict, output_dir, stem: str = "ensemble") -> dict:
    output_dir = Path(output_dir)
    report.setdefault("machine", describe_machine())
    return {
        "json": str(write_json_atomic(output_dir / f"{stem}.json", report)),
        "md": str(write_text_atomic(output_dir / f"{stem}.md", markdown(report))),
        "png": str(write_bytes_atomic(output_dir / f"{stem}.png", plot_png(report))),
    }
