"""Cascade logic and calibration on hand-made probability arrays (no models, fast)."""

import numpy as np
import pytest

from udc.ensemble import calibration, combination
from udc.ensemble import cascade as logic
from udc.errors import UdcError


def test_confidence_rules():
    p = np.array([[0.6, 0.3, 0.1], [0.4, 0.4, 0.2]])
    np.testing.assert_allclose(logic.confidence(p, "max_prob"), [0.6, 0.4])
    np.testing.assert_allclose(logic.confidence(p, "margin"), [0.3, 0.0])
    with pytest.raises(UdcError, match="unknown exit rule"):
        logic.confidence(p, "entropy")


def _three_members():
    # 4 inputs, 2 classes; member 0 is sure of inputs 0 and 2 only.
    m0 = np.array([[0.95, 0.05], [0.55, 0.45], [0.10, 0.90], [0.50, 0.50]])
    m1 = np.array([[0.90, 0.10], [0.05, 0.95], [0.20, 0.80], [0.60, 0.40]])
    m2 = np.array([[0.80, 0.20], [0.10, 0.90], [0.30, 0.70], [0.30, 0.70]])
    return [m0, m1, m2]


def test_exit_decisions_costs_and_last_stage_answers():
    probs = _three_members()
    out = logic.run_cascade(probs, [0.9, 0.9], "max_prob", costs=[1, 10, 100])
    # input 0: m0 0.95 >= 0.9 -> stage 0. input 1: m0 0.55; avg(m0,m1)=[0.3,0.7] -> stage 2.
    # input 2: m0 0.9 -> stage 0. input 3: never confident -> the last stage answers.
    np.testing.assert_array_equal(out.exit_stage, [0, 2, 0, 2])
    np.testing.assert_allclose(out.cost, [1, 111, 1, 111])
    assert out.average_cost == pytest.approx(56.0)
    assert out.exit_fractions == [0.5, 0.0, 0.5]
    avg3 = np.mean(probs, axis=0)
    np.testing.assert_array_equal(out.predictions, [0, avg3[1].argmax(), 1, avg3[3].argmax()])


def test_margin_rule_exits_at_middle_stage():
    probs = _three_members()
    out = logic.run_cascade(probs, [0.85, 0.35], "margin", costs=[1, 10, 100])
    # margins stage 0: [0.9, 0.1, 0.8, 0.0]; stage 1 (avg m0,m1): [0.85, 0.4, 0.7, 0.1]
    np.testing.assert_array_equal(out.exit_stage, [0, 1, 1, 2])
    np.testing.assert_allclose(out.cost, [1, 11, 11, 111])


def test_zero_thresholds_exit_first_and_unreachable_thresholds_give_full_ensemble():
    probs = _three_members()
    first = logic.run_cascade(probs, [0.0, 0.0], "max_prob", costs=[1, 2, 3])
    assert (first.exit_stage == 0).all() and first.average_cost == 1
    np.testing.assert_array_equal(first.predictions, probs[0].argmax(1))
    full = logic.run_cascade(probs, [1.0, 1.0], "max_prob", costs=[1, 2, 3])
    assert (full.exit_stage == 2).all() and full.average_cost == 6
    np.testing.assert_array_equal(full.predictions, np.mean(probs, axis=0).argmax(1))


@pytest.mark.parametrize("thresholds", [[0.5, 1.5], [-0.1, 0.5], [0.5, float("nan")]])
def test_thresholds_outside_unit_interval_are_rejected(thresholds):
    with pytest.raises(logic.ThresholdError, match=r"\[0, 1\]"):
        logic.run_cascade(_three_members(), thresholds, "max_prob", costs=[1, 2, 3])


def test_threshold_count_must_match_stages():
    with pytest.raises(logic.ThresholdError, match="needs 2 thresholds"):
        logic.run_cascade(_three_members(), [0.5], "max_prob", costs=[1, 2, 3])


def test_order_by_cost():
    assert logic.order_by_cost([30.0, 1.0, 5.0]) == [1, 2, 0]


def _constructed_case():
    """Member 0 (cost 1) is right on some inputs; member 1 (cost 10) is always right and sure."""
    conf = np.array([0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50])
    right = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1], dtype=bool)
    labels = np.zeros(10, dtype=int)
    m0 = np.zeros((10, 3))
    m0[np.arange(10), np.where(right, 0, 1)] = conf
    m0[np.arange(10), 2] = 1 - conf
    m1 = np.zeros((10, 3))
    m1[:, 0] = 1.0
    return [m0, m1], labels


def test_calibration_picks_cheapest_point_meeting_max_drop():
    probs, labels = _constructed_case()
    points = calibration.sweep(probs, labels, [1.0, 10.0], "max_prob")
    full = np.mean(np.mean(probs, axis=0).argmax(1) == labels)
    assert full == 1.0
    chosen = calibration.select(points, full, max_drop=10.0)
    # Exiting the 5 most confident inputs (one wrong) is the cheapest setting within 10 points.
    assert chosen.accuracy == pytest.approx(0.9)
    assert chosen.average_cost == pytest.approx((5 * 1 + 5 * 11) / 10)
    assert 0.70 < chosen.thresholds[0] <= 0.75
    assert chosen.exit_fractions == pytest.approx((0.5, 0.5))
    # No drop allowed: nothing may exit early except inputs member 0 gets right at the top.
    strict = calibration.select(points, full, max_drop=0.0)
    assert strict.accuracy == 1.0 and strict.average_cost == pytest.approx((3 + 7 * 11) / 10)


def test_calibration_best_accuracy_under_max_cost():
    probs, labels = _constructed_case()
    points = calibration.sweep(probs, labels, [1.0, 10.0], "max_prob")
    chosen = calibration.select(points, 1.0, max_cost=4.0)
    assert chosen.accuracy == pytest.approx(0.8) and chosen.average_cost == pytest.approx(3.0)  # 8 exit, 2 wrong
    with pytest.raises(calibration.GoalNotReachableError, match="relax"):
        calibration.select(points, 1.0, max_cost=0.5)
    with pytest.raises(UdcError, match="give a goal"):
        calibration.select(points, 1.0)
    # A share of the full ensemble's cost instead: checked as a goal of its own, one line per mistake.
    calibration.check_goal(None, None, 0.4)
    calibration.check_goal(None, None, None, cheaper_than_flash_peer=True)  # bounds the cost on its own
    for args, message in (((None, 5.0, 0.4), "give --max_cost or --max_cost_ratio, not both"),
                          ((None, None, 1.5), r"--max_cost_ratio is a share .* must lie in \(0, 1\], got 1.5")):
        with pytest.raises(UdcError, match=message):
            calibration.check_goal(*args)


def test_sweep_agrees_with_run_cascade_and_front_is_monotone():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    probs = []
    for noise in (2.0, 1.0, 0.5):
        z = rng.normal(size=(300, 5)) * noise
        z[np.arange(300), labels] += 1.5
        e = np.exp(z)
        probs.append(e / e.sum(1, keepdims=True))
    costs = [1.0, 4.0, 16.0]
    for rule in ("max_prob", "margin"):
        points = calibration.sweep(probs, labels, costs, rule, last_grid=21, budget=50)
        for p in points[:: max(1, len(points) // 40)]:
            out = logic.run_cascade(probs, p.thresholds, rule, costs)
            assert out.accuracy(labels) == pytest.approx(p.accuracy)
            assert out.average_cost == pytest.approx(p.average_cost)
            assert out.exit_fractions == pytest.approx(list(p.exit_fractions))
        front = calibration.pareto_front(points)
        assert all(a.average_cost <= b.average_cost and a.accuracy < b.accuracy for a, b in zip(front, front[1:]))


def test_empty_validation_split_is_a_clear_error():
    with pytest.raises(calibration.EmptyValidationError, match="validation split is empty"):
        calibration.sweep([np.zeros((0, 3)), np.zeros((0, 3))], np.zeros(0, int), [1, 2], "max_prob")


def _noisy_member(labels, accuracy, confidence, rng, classes=10):
    """Probabilities that put `confidence` on the right class for an `accuracy` share of rows, else on
    a random wrong one, the rest spread evenly."""
    n = len(labels)
    right = rng.random(n) < accuracy
    picked = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
    probs = np.full((n, classes), (1 - confidence) / (classes - 1))
    probs[np.arange(n), picked] = confidence
    return probs


def test_the_fitted_pool_never_loses_to_its_best_member_on_the_data_it_was_fitted_on():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 3000)
    strong = _noisy_member(labels, 0.90, 0.6, rng)
    weak = _noisy_member(labels, 0.40, 0.99, rng)  # overconfident: the plain average follows it
    average = logic.stage_probabilities([strong, weak])[1]
    accuracy = lambda p: float(np.mean(p.argmax(1) == labels))  # noqa: E731
    assert accuracy(average) < accuracy(strong) - 0.05  # what the average does to unequal members
    weights = combination.fit_stage_weights([strong, weak], labels)
    assert [len(w) for w in weights] == [1, 2] and all((w >= 0).all() for w in weights)
    stages = logic.stage_probabilities([strong, weak], weights)
    assert accuracy(stages[1]) >= accuracy(strong) and accuracy(stages[0]) == accuracy(strong)


def test_a_pool_of_independent_members_beats_each_of_them():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 3000)
    members = [_noisy_member(labels, 0.7, 0.5, rng) for _ in range(3)]
    weights = combination.fit_stage_weights(members, labels)
    pooled = logic.stage_probabilities(members, weights)[-1]
    assert np.mean(pooled.argmax(1) == labels) > max(np.mean(m.argmax(1) == labels) for m in members) + 0.05
    # One member at weight 1 is that member.
    np.testing.assert_allclose(combination.pooled([members[0]], [1.0]), members[0], rtol=1e-6)


def test_a_combination_needs_known_names_and_fitting_weights():
    with pytest.raises(UdcError, match="unknown combination 'median'; choose one of: log_linear, average"):
        combination.check_combination("median")
    with pytest.raises(UdcError, match="2 stages of combination weights for 3 members"):
        combination.check_stage_weights([[1.0], [1.0, 1.0]], 3)
    with pytest.raises(UdcError, match="stage 2 needs 2 finite non-negative combination weights, not all zero"):
        combination.check_stage_weights([[1.0], [0.0, 0.0]], 2)


def _confident_when_right(labels, accuracy, rng, classes=10):
    """Probabilities right on an `accuracy` share of rows with confidence 0.9, wrong elsewhere with 0.4: a
    member whose confidence says when to trust it, as an early exit needs."""
    n = len(labels)
    right = rng.random(n) < accuracy
    picked = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
    confidence = np.where(right, 0.9, 0.4)[:, None]
    probs = np.broadcast_to((1 - confidence) / (classes - 1), (n, classes)).copy()
    probs[np.arange(n), picked] = confidence[:, 0]
    return probs


def test_the_front_area_is_the_mean_best_accuracy_over_the_cost_range():
    from udc.ensemble.selection import front_area

    points = [calibration.OperatingPoint((), 0.5, 2.0, ()), calibration.OperatingPoint((), 0.8, 6.0, ()),
              calibration.OperatingPoint((), 0.7, 7.0, ())]  # the last is beaten: off the front
    assert front_area(points, 10.0) == pytest.approx((0.5 * 4 + 0.8 * 4) / 10)
    assert front_area(points, 4.0) == pytest.approx(0.5 * 2 / 4)


def test_member_selection_leaves_out_a_model_that_adds_nothing():
    """A pool of a cheap, a middle, a copy of the middle one and a strong model: the copy errs where its
    original does, so a cascade gains no accuracy from it and selection never takes both."""
    from udc.ensemble.selection import select_members

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    cheap, middle, strong = (_confident_when_right(labels, a, rng) for a in (0.6, 0.8, 0.9))
    pool, costs = [cheap, middle, middle.copy(), strong], [1.0, 3.0, 3.1, 10.0]
    lines = []
    chosen, record = select_members(pool, labels, costs, "max_prob", "log_linear", 3, log=lines.append)
    assert not {1, 2} <= set(chosen) and 3 in chosen, chosen
    assert chosen == sorted(chosen, key=lambda i: costs[i])  # cascade order: cheapest first
    assert all(step["gain"] > record["min_gain"] for step in record["steps"]) and record["cost_range"] == 10.0 + 3.1 + 3.0
    assert [step["area"] for step in record["steps"]] == sorted(step["area"] for step in record["steps"])
    assert len(lines) == len(record["steps"]) + (len(chosen) < 3) and "member selection" in lines[0]
    with pytest.raises(UdcError, match="--max_members must be at least 1"):
        select_members(pool, labels, costs, "max_prob", "log_linear", 0)


def test_a_cascade_longer_than_the_sweep_holds_is_refused_before_it_sweeps():
    labels, count = np.arange(12) % 3, calibration.MAX_MEMBERS + 1
    probs = [np.full((12, 3), 1 / 3)] * count
    with pytest.raises(UdcError, match=f"a cascade of {count} members is more than the {count - 1} the threshold"):
        calibration.sweep(probs, labels, np.arange(1.0, count + 1.0), "max_prob")
    assert len(calibration.sweep(probs[:2], labels, [1.0, 2.0], "max_prob")) > 1
