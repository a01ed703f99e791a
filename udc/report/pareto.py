"""Accuracy against encoded size: the Pareto front and UDC's standing against baselines.

A point is a dict with at least `name`, `kind` ("baseline", "udc" or "control"), `accuracy`
(int8 .tflite test accuracy, 0..1) and `encoded_bytes` (Vela's total_npu_encoded_weights).
UDC points and controls (`udc.workflows.controls`) also carry `budget_bytes`.
"""

import math

ISO_ACCURACY_TOLERANCE = 0.003  # 0.3 points


def pareto_front(points: list[dict]) -> list[dict]:
    """Points that no other point beats on both size (smaller) and accuracy (higher), by size."""
    front, best = [], -math.inf
    for p in sorted(points, key=lambda p: (p["encoded_bytes"], -p["accuracy"])):
        if p["accuracy"] > best:
            front.append(p)
            best = p["accuracy"]
    return front


def iso_accuracy_ratio(udc_point: dict, baselines: list[dict], tolerance=ISO_ACCURACY_TOLERANCE):
    """Encoded bytes of the smallest baseline reaching UDC's accuracy (minus the tolerance)
    divided by UDC's bytes; None when no baseline reaches it."""
    reaching = [b for b in baselines if b["accuracy"] >= udc_point["accuracy"] - tolerance]
    if not reaching:
        return None
    return min(b["encoded_bytes"] for b in reaching) / udc_point["encoded_bytes"]


def iso_size_gain(udc_point: dict, baselines: list[dict]):
    """UDC's accuracy minus that of the best baseline no larger than it (points, not
    fractions); None when every baseline is larger."""
    fitting = [b for b in baselines if b["encoded_bytes"] <= udc_point["encoded_bytes"]]
    if not fitting:
        return None
    return 100.0 * (udc_point["accuracy"] - max(b["accuracy"] for b in fitting))


def compare(points: list[dict]) -> dict:
    """Per UDC point: iso-accuracy size ratio and iso-size accuracy gain; plus the best ratio."""
    baselines = [p for p in points if p["kind"] == "baseline"]
    rows = []
    for p in (p for p in points if p["kind"] == "udc"):
        rows.append({"name": p["name"], "accuracy": p["accuracy"], "encoded_bytes": p["encoded_bytes"],
                     "iso_accuracy_size_ratio": iso_accuracy_ratio(p, baselines),
                     "iso_size_accuracy_gain_points": iso_size_gain(p, baselines)})
    ratios = [r["iso_accuracy_size_ratio"] for r in rows if r["iso_accuracy_size_ratio"] is not None]
    return {"udc": rows, "best_iso_accuracy_size_ratio": max(ratios) if ratios else None,
            "front": [p["name"] for p in pareto_front(points)], "controls": control_rows(points),
            "baselines": baseline_rows(points)}


def baseline_rows(points: list[dict], tolerance=ISO_ACCURACY_TOLERANCE) -> list[dict]:
    """Per baseline: the smallest UDC point within `tolerance` of its accuracy and the size ratio
    (baseline bytes / UDC bytes; None when no UDC point is that accurate)."""
    searched = [p for p in points if p["kind"] == "udc"]
    rows = []
    for b in sorted((p for p in points if p["kind"] == "baseline"), key=lambda p: p["encoded_bytes"]):
        reaching = [p for p in searched if p["accuracy"] >= b["accuracy"] - tolerance]
        best = min(reaching, key=lambda p: p["encoded_bytes"]) if reaching else None
        rows.append({"baseline": b["name"], "accuracy": b["accuracy"], "encoded_bytes": b["encoded_bytes"],
                     "udc_point": best and best["name"],
                     "size_ratio": best and b["encoded_bytes"] / best["encoded_bytes"]})
    return rows


def control_rows(points: list[dict]) -> list[dict]:
    """Per UDC point with controls at its budget: its accuracy against theirs, and whether it beats each."""
    rows = []
    for p in (p for p in points if p["kind"] == "udc"):
        controls = [c for c in points if c["kind"] == "control" and c["budget_bytes"] == p.get("budget_bytes")]
        if controls:
            rows.append({"name": p["name"], "accuracy": p["accuracy"],
                         "controls": {c["name"]: c["accuracy"] for c in controls},
                         "beats_every_control": all(p["accuracy"] > c["accuracy"] for c in controls)})
    return rows


def plot(points: list[dict], path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    labels = {"baseline": "baselines (tfmot recipes, uniform grid)", "udc": "UDC (budgets)",
              "control": "controls (random, uniform children of the same supernet)"}
    for kind, marker, color in (("baseline", "s", "tab:gray"), ("udc", "o", "tab:red"), ("control", "^", "tab:green")):
        chosen = [p for p in points if p["kind"] == kind]
        if not chosen:
            continue
        ax.scatter([p["encoded_bytes"] / 1024 for p in chosen], [100 * p["accuracy"] for p in chosen],
                   marker=marker, color=color, label=labels[kind], zorder=3)
        for p in chosen if kind != "control" else ():  # many controls at each budget: the legend says what they are
            ax.annotate(p["name"], (p["encoded_bytes"] / 1024, 100 * p["accuracy"]), fontsize=8,
                        xytext=(4, -10), textcoords="offset points")
    front = pareto_front(points)
    ax.step([p["encoded_bytes"] / 1024 for p in front], [100 * p["accuracy"] for p in front], where="post",
            color="tab:blue", alpha=0.6, label="Pareto front", zorder=2)
    ax.set_xscale("log")
    save_accuracy_chart(fig, ax, path, "Vela encoded weight KiB (log scale)", title)


def save_accuracy_chart(fig, ax, path, xlabel: str, title: str) -> None:
    """Labels, grid and legend of an accuracy-against-cost chart, written to `path` (PNG) and closed."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel("int8 .tflite test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
