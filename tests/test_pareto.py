import pytest

from udc.report.pareto import compare, iso_accuracy_ratio, iso_size_gain, pareto_front, plot


def point(name, kind, accuracy, size):
    return {"name": name, "kind": kind, "accuracy": accuracy, "encoded_bytes": size}


POINTS = [
    point("ptq", "baseline", 0.900, 250_000),
    point("pqat_75", "baseline", 0.895, 90_000),
    point("pqat_90", "baseline", 0.880, 40_000),
    point("dominated", "baseline", 0.870, 100_000),
    point("udc_12", "udc", 0.893, 12_000),
    point("udc_6", "udc", 0.870, 6_000),
]


def test_front_keeps_only_undominated_points_by_size():
    assert [p["name"] for p in pareto_front(POINTS)] == ["udc_6", "udc_12", "pqat_75", "ptq"]


def test_iso_accuracy_ratio_uses_the_smallest_baseline_within_tolerance():
    baselines = [p for p in POINTS if p["kind"] == "baseline"]
    # 0.893 - 0.003 = 0.890: pqat_75 (90 kB) reaches it, pqat_90 (0.880) does not.
    assert iso_accuracy_ratio(POINTS[4], baselines) == pytest.approx(90_000 / 12_000)
    assert iso_accuracy_ratio(point("u", "udc", 0.95, 1000), baselines) is None


def test_iso_size_gain_compares_with_baselines_no_larger():
    baselines = [p for p in POINTS if p["kind"] == "baseline"]
    assert iso_size_gain(point("u", "udc", 0.89, 50_000), baselines) == pytest.approx(1.0)
    assert iso_size_gain(POINTS[5], baselines) is None


def test_compare_and_plot(tmp_path):
    summary = compare(POINTS)
    assert summary["best_iso_accuracy_size_ratio"] == pytest.approx(max(90_000 / 12_000, 40_000 / 6_000))
    assert [r["name"] for r in summary["udc"]] == ["udc_12", "udc_6"]
    per_baseline = {r["baseline"]: r for r in summary["baselines"]}
    assert per_baseline["pqat_75"]["udc_point"] == "udc_12"  # 0.893 >= 0.895 - 0.003; udc_6 is not
    assert per_baseline["pqat_75"]["size_ratio"] == pytest.approx(90_000 / 12_000)
    assert per_baseline["pqat_90"]["udc_point"] == "udc_12"  # udc_6 is a point below it
    assert per_baseline["dominated"]["udc_point"] == "udc_6"  # the smallest within 0.3 points
    assert per_baseline["ptq"]["udc_point"] is None and per_baseline["ptq"]["size_ratio"] is None
    plot(POINTS, tmp_path / "p.png", "test")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_controls_are_compared_at_their_budget_and_plotted(tmp_path):
    searched = [{**point("udc_8kb", "udc", 0.89, 7_900), "budget_bytes": 8192},
                {**point("udc_16kb", "udc", 0.90, 15_900), "budget_bytes": 16384}]
    controls = [{**point("uniform_8kb", "control", 0.87, 8_000), "budget_bytes": 8192},
                {**point("random_8kb_1", "control", 0.891, 8_100), "budget_bytes": 8192},
                {**point("uniform_16kb", "control", 0.88, 16_000), "budget_bytes": 16384}]
    summary = compare(POINTS + searched + controls)
    rows = {r["name"]: r for r in summary["controls"]}
    assert rows["udc_8kb"]["controls"] == {"uniform_8kb": 0.87, "random_8kb_1": 0.891}
    assert not rows["udc_8kb"]["beats_every_control"]  # the random child is more accurate
    assert rows["udc_16kb"]["beats_every_control"] and rows["udc_16kb"]["controls"] == {"uniform_16kb": 0.88}
    assert "udc_12" not in rows  # no controls at its budget
    assert [r["name"] for r in summary["udc"]] == ["udc_12", "udc_6", "udc_8kb", "udc_16kb"]  # not the controls
    plot(POINTS + searched + controls, tmp_path / "p.png", "test")
    assert (tmp_path / "p.png").stat().st_size > 1000
