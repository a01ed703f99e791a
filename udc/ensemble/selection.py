"""Member selection: the subset of a pool of models whose cascade serves the whole cost range best.

A pool (searches at many budgets, several seeds) holds more models than a cascade should
run, and the members that help are not simply the best ones: two models that err on the
same inputs add cost and no accuracy. The selection measures what a set of members does
as a cascade, on the validation split: members cheapest first, the stages' combination
fitted (`udc.ensemble.combination`), the thresholds swept (`udc.ensemble.calibration`),
and the **area** under the front of that sweep: the mean, over average-cost budgets c from
0 to the costliest cascade the selection can build (its `max_members` costliest pool models
together), of the best validation accuracy a threshold setting reaches at average cost c or
less (0 below the cheapest member). It rewards a cascade that is accurate early (cheap members
that answer most inputs) and late (the accuracy its full ensemble reaches), which is what a
user choosing an operating point afterwards wants. Why not up to the costliest single model:
a full ensemble's accuracy sits at average costs above every single model, so that range
ignored it, and a member that lifts it never joined (three seeds' 8/32/64 KiB models: a third
64 KiB model of another seed raised the full ensemble's validation accuracy, and its test
accuracy from 92.69 to 92.78 %, but added no area below the costliest model's cycles).

Greedy forward selection: start empty; add the pool model that raises the area most (the
cascade order is always cheapest first); stop when no model raises it by more than
`MIN_GAIN`, or at `max_members`. With a pool of P models and k members it sweeps about
P * k cascades of up to k members (seconds each on 6,000 validation images).
"""

import numpy as np

from udc.ensemble import calibration
from udc.ensemble.combination import fit_stage_weights
from udc.errors import UdcError

MIN_GAIN = 1e-4  # area (accuracy x share of the cost range) a member must add to join


def front_area(points, cost_range: float) -> float:
    """Mean best accuracy of `points` (OperatingPoints) over average-cost budgets in [0, cost_range]."""
    front = calibration.pareto_front(points)
    area = 0.0
    for point, following in zip(front, front[1:] + [None]):
        start = min(point.average_cost, cost_range)
        end = cost_range if following is None else min(following.average_cost, cost_range)
        area += point.accuracy * max(end - start, 0.0)
    return area / cost_range


def cascade_area(val_probs, labels, costs, members, rule: str, combination: str, cost_range: float) -> float:
    """`front_area` of the cascade of `members` (indices into the pool, in cascade order)."""
    probs = [val_probs[i] for i in members]
    weights = fit_stage_weights(probs, labels) if combination == "log_linear" else None
    points = calibration.sweep(probs, labels, np.asarray(costs, np.float64)[list(members)], rule,
                               stage_weights=weights)
    return front_area(points, cost_range)


def select_members(val_probs, labels, costs, rule: str, combination: str, max_members: int,
                   log=print) -> tuple[list[int], dict]:
    """(the chosen pool indices, cheapest first; a record of each step) by greedy forward selection."""
    if max_members < 1:
        raise UdcError(f"--max_members must be at least 1 (0: use every given member), got {max_members}")
    costs = np.asarray(costs, np.float64)
    cost_range = float(np.sort(costs)[-max_members:].sum())  # the costliest cascade of max_members pool models
    chosen, area, steps = [], 0.0, []
    while len(chosen) < min(max_members, len(costs)):
        trials = []
        for i in range(len(costs)):
            if i in chosen:
                continue
            members = sorted(chosen + [i], key=lambda j: (costs[j], j))
            trials.append((cascade_area(val_probs, labels, costs, members, rule, combination, cost_range), i))
        best_area, best = max(trials, key=lambda t: (t[0], -t[1]))
        if best_area <= area + MIN_GAIN:
            log(f"member selection: no model adds more than {MIN_GAIN:g} area to {len(chosen)} members; stop")
            break
        chosen.append(best)
        steps.append({"added": best, "area": best_area, "gain": best_area - area})
        log(f"member selection: + pool model {best} -> area {best_area:.4f} (+{best_area - area:.4f})")
        area = best_area
    chosen.sort(key=lambda j: (costs[j], j))
    return chosen, {"cost_range": cost_range, "area": area, "steps": steps, "min_gain": MIN_GAIN}
