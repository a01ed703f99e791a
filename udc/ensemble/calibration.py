"""Threshold calibration: sweep the thresholds on a validation split, trace the
accuracy-vs-average-cost curve, and pick the operating point for a user's goal.

The sweep loops over the thresholds of all decision stages but the last one and
evaluates every candidate of the last decision stage at once (a matrix product), so
a three-member cascade with 201 candidates per stage (40,401 points) takes well under
a second on a few thousand validation images.
"""

import dataclasses
import itertools

import numpy as np

from udc.ensemble import cascade
from udc.errors import UdcError

LAST_STAGE_GRID = 201
SWEEP_BUDGET = 2000  # loops over the thresholds of the earlier stages
# The most members a sweep takes. Each earlier stage keeps at least 3 quantiles, plus 0 and 1, so the grid grows
# about 5x per member past the budget: 8 members of 6,000 validation images gave 3.2 million operating points in
# 2.9 GB and 42 s; 10 members were killed by the kernel at 24 GB.
MAX_MEMBERS = 8


class EmptyValidationError(UdcError):
    pass


class GoalNotReachableError(UdcError):
    pass


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    thresholds: tuple
    accuracy: float
    average_cost: float
    exit_fractions: tuple

    def as_dict(self) -> dict:
        return {"thresholds": [float(t) for t in self.thresholds], "accuracy": self.accuracy,
                "average_cost": self.average_cost, "exit_fractions": list(self.exit_fractions)}


def candidate_thresholds(conf: np.ndarray, size: int) -> np.ndarray:
    """Quantiles of the observed confidences (dense where the inputs are), plus 0 and 1."""
    q = np.quantile(conf, np.linspace(0.0, 1.0, max(2, size))) if len(conf) else np.zeros(0)
    return np.unique(np.clip(np.concatenate([[0.0, 1.0], q]), 0.0, 1.0))


def check_validation_size(count: int) -> None:
    """EmptyValidationError for a validation split with no images: calibration needs some."""
    if count == 0:
        raise EmptyValidationError(
            "the validation split is empty; calibration needs labelled validation images "
            "(raise --val_fraction, or --max_train, which cuts validation in proportion)"
        )


def check_member_count(count: int) -> None:
    """UdcError for a cascade longer than the sweep can hold in memory."""
    if count > MAX_MEMBERS:
        raise UdcError(f"a cascade of {count} members is more than the {MAX_MEMBERS} the threshold sweep holds in "
                       f"memory; give --max_members {MAX_MEMBERS} or fewer to choose them from the pool")


def _check_inputs(member_probs, labels):
    labels = np.asarray(labels)
    check_validation_size(len(labels))
    check_member_count(len(member_probs))
    for p in member_probs:
        if len(p) != len(labels):
            raise UdcError(f"{len(p)} probability rows for {len(labels)} labels")
    return labels


def sweep(member_probs, labels, costs, rule: str, last_grid: int = LAST_STAGE_GRID,
          budget: int = SWEEP_BUDGET, stage_weights=None) -> list[OperatingPoint]:
    """Every operating point of the threshold grid (members in cascade order; `stage_weights`: the
    stages' log-linear pools, else averages)."""
    labels = _check_inputs(member_probs, labels)
    stages = cascade.stage_probabilities(member_probs, stage_weights)
    num_stages = len(stages)
    cum = cascade.cumulative_costs(costs)
    if len(cum) != num_stages:
        raise UdcError(f"{num_stages} members but {len(cum)} costs")
    n = len(labels)
    correct = np.stack([(p.argmax(axis=1) == labels).astype(np.float64) for p in stages])
    conf = np.stack([cascade.confidence(p, rule) for p in stages])
    if num_stages == 1:
        return [OperatingPoint((), float(correct[0].mean()), float(cum[0]), (1.0,))]
    prefix = num_stages - 2
    prefix_size = int(np.clip(np.floor(budget ** (1.0 / prefix)), 3, last_grid)) if prefix else 1
    grids = [candidate_thresholds(conf[k], prefix_size) for k in range(prefix)]
    last = candidate_thresholds(conf[num_stages - 2], last_grid)
    last_pass = (conf[num_stages - 2][None, :] >= last[:, None]).astype(np.float64)  # (G, n)
    k_last = num_stages - 2
    points = []
    for prefix_t in itertools.product(*grids):
        alive = np.ones(n, dtype=bool)
        right, spent, exits = 0.0, 0.0, []
        for k, t in enumerate(prefix_t):
            leave = alive & (conf[k] >= t)
            right += correct[k][leave].sum()
            spent += cum[k] * leave.sum()
            exits.append(leave.sum())
            alive &= ~leave
        a = alive.astype(np.float64)
        leave_last = last_pass @ a  # (G,) inputs exiting at stage k_last
        right_last = last_pass @ (a * correct[k_last]) + (a * correct[-1]).sum() - last_pass @ (a * correct[-1])
        spent_last = leave_last * cum[k_last] + (a.sum() - leave_last) * cum[-1]
        for g, t in enumerate(last):
            fractions = [e / n for e in exits] + [leave_last[g] / n, (a.sum() - leave_last[g]) / n]
            points.append(OperatingPoint(
                thresholds=tuple(float(v) for v in prefix_t) + (float(t),),
                accuracy=float((right + right_last[g]) / n),
                average_cost=float((spent + spent_last[g]) / n),
                exit_fractions=tuple(float(f) for f in fractions),
            ))
    return points


def pareto_front(points) -> list[OperatingPoint]:
    """Points that no other point beats on both accuracy and cost, cheapest first."""
    ordered = sorted(points, key=lambda p: (p.average_cost, -p.accuracy))
    front, best = [], -np.inf
    for p in ordered:
        if p.accuracy > best + 1e-12:
            front.append(p)
            best = p.accuracy
    return front


def check_goal(max_drop: float | None, max_cost: float | None, max_cost_ratio: float | None = None,
               cheaper_than_flash_peer: bool = False) -> None:
    """Raises UdcError unless there is a goal and it makes sense (max_drop in accuracy points, max_cost_ratio a
    share of the full ensemble's average cost; cheaper_than_flash_peer bounds the cost on its own)."""
    if max_drop is None and max_cost is None and max_cost_ratio is None and not cheaper_than_flash_peer:
        raise UdcError("give a goal: --max_drop (accuracy points), --max_cost (average cost), --max_cost_ratio "
                       "(share of the full ensemble's average cost) or --cheaper_than_flash_peer")
    if max_cost is not None and max_cost_ratio is not None:
        raise UdcError("give --max_cost or --max_cost_ratio, not both: each bounds the average cost")
    if max_cost_ratio is not None and not (np.isfinite(max_cost_ratio) and 0 < max_cost_ratio <= 1):
        raise UdcError(f"--max_cost_ratio is a share of the full ensemble's average cost and must lie in (0, 1], "
                       f"got {max_cost_ratio:g}; e.g. --max_cost_ratio 0.4")
    if max_drop is not None and not (np.isfinite(max_drop) and 0 <= max_drop <= 100):
        raise UdcError(f"--max_drop is in accuracy points and must lie in [0, 100], got {max_drop:g}; "
                       "e.g. --max_drop 0.5 allows half a point below the full ensemble")
    if max_cost is not None and not (np.isfinite(max_cost) and max_cost > 0):
        raise UdcError(f"--max_cost must be a positive average cost, got {max_cost:g}; give it in cycles "
                       "(--cost=vela_cycles) or ms (--cost=host_latency)")


def select(points, reference_accuracy: float, max_drop: float | None = None,
           max_cost: float | None = None) -> OperatingPoint:
    """The point for the goal.

    max_drop (accuracy points): the lowest average cost whose accuracy is at most
    `max_drop` points below `reference_accuracy` (the full ensemble's).
    max_cost: the best accuracy at an average cost of at most `max_cost`.
    Both: the cheapest point meeting both.
    """
    check_goal(max_drop, max_cost)
    feasible = list(points)
    if max_drop is not None:
        floor = reference_accuracy - max_drop / 100.0 - 1e-9
        feasible = [p for p in feasible if p.accuracy >= floor]
    if max_cost is not None:
        feasible = [p for p in feasible if p.average_cost <= max_cost * (1 + 1e-12)]
    if not feasible:
        cheapest = min(points, key=lambda p: p.average_cost)
        raise GoalNotReachableError(
            "no threshold setting meets the goal on the validation split "
            f"(full ensemble {100 * reference_accuracy:.2f} %, cheapest cascade costs "
            f"{cheapest.average_cost:.6g}); relax --max_drop or raise --max_cost"
        )
    if max_drop is not None:
        return min(feasible, key=lambda p: (p.average_cost, -p.accuracy))
    return min(feasible, key=lambda p: (-p.accuracy, p.average_cost))
