"""Cascade logic on probability arrays (pure numpy, no models).

Members are ordered cheapest first. At stage k the cascade combines the probabilities
of members 0..k (their average, or with `stage_weights` their fitted log-linear pool,
`udc.ensemble.combination`) and exits when its confidence passes the stage's threshold;
the last stage always answers. With no exit at all it is the full ensemble.
"""

import dataclasses

import numpy as np

from udc.ensemble.combination import check_stage_weights, pooled
from udc.errors import UdcError

RULES = ("max_prob", "margin")


class ThresholdError(UdcError):
    pass


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise UdcError(f"unknown exit rule '{rule}'; choose one of: {', '.join(RULES)}")
    return rule


def check_thresholds(thresholds, num_stages: int) -> np.ndarray:
    """Thresholds of the first num_stages - 1 stages, each in [0, 1] (the last stage has none)."""
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if len(t) != num_stages - 1:
        raise ThresholdError(
            f"a cascade of {num_stages} members needs {num_stages - 1} thresholds "
            f"(the last stage always answers), got {len(t)}"
        )
    bad = [float(v) for v in t if not (np.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise ThresholdError(f"thresholds must lie in [0, 1], got {bad}")
    return t


def confidence(probs: np.ndarray, rule: str) -> np.ndarray:
    """Per-row confidence: the top probability, or top-1 minus top-2 (the margin)."""
    check_rule(rule)
    probs = np.asarray(probs, dtype=np.float64)
    if rule == "max_prob":
        return probs.max(axis=1)
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def stage_probabilities(member_probs, stage_weights=None) -> list[np.ndarray]:
    """Entry k combines members 0..k: their running average, or with `stage_weights` (per stage, the
    weights of its members) their log-linear pool."""
    member_probs = [np.asarray(p, dtype=np.float64) for p in member_probs]
    if not member_probs:
        raise UdcError("a cascade needs at least one member")
    shape = member_probs[0].shape
    if any(p.shape != shape for p in member_probs):
        raise UdcError(f"member probability arrays differ in shape: {[p.shape for p in member_probs]}")
    if stage_weights is not None:
        weights = check_stage_weights(stage_weights, len(member_probs))
        return [combine(member_probs[:k + 1], w) for k, w in enumerate(weights)]
    total = np.zeros(shape)
    stages = []
    for k, p in enumerate(member_probs):
        total = total + p
        stages.append(total / (k + 1))
    return stages


def combine(member_probs, weights=None) -> np.ndarray:
    """One stage's probabilities from those of its members: their average, or with `weights` their
    log-linear pool."""
    if weights is None:  # summed in order, as `stage_probabilities` does: the same floats
        return sum(np.asarray(p, dtype=np.float64) for p in member_probs) / len(member_probs)
    return pooled(member_probs, weights)


def cumulative_costs(costs) -> np.ndarray:
    """Cost of answering at stage k: all members 0..k were evaluated."""
    costs = np.asarray(costs, dtype=np.float64)
    if np.any(costs < 0) or not np.all(np.isfinite(costs)):
        raise UdcError(f"member costs must be finite and non-negative, got {costs.tolist()}")
    return np.cumsum(costs)


def exit_stages(stage_confidence: np.ndarray, thresholds) -> np.ndarray:
    """Index of the stage that answers each input; `stage_confidence` is (stages, n)."""
    conf = np.asarray(stage_confidence)
    num_stages = conf.shape[0]
    t = check_thresholds(thresholds, num_stages)
    passes = conf[:-1] >= t[:, None]  # (stages - 1, n)
    passes = np.concatenate([passes, np.ones((1, conf.shape[1]), dtype=bool)])  # last stage answers
    return np.argmax(passes, axis=0)


@dataclasses.dataclass
class CascadeOutcome:
    predictions: np.ndarray  # (n,) class chosen for each input
    exit_stage: np.ndarray  # (n,) stage (0-based) that answered
    cost: np.ndarray  # (n,) cost spent on each input
    num_stages: int

    @property
    def average_cost(self) -> float:
        return float(self.cost.mean()) if len(self.cost) else 0.0

    @property
    def exit_fractions(self) -> list[float]:
        n = max(1, len(self.exit_stage))
        return [float(np.sum(self.exit_stage == k)) / n for k in range(self.num_stages)]

    def accuracy(self, labels) -> float:
        return float(np.mean(self.predictions == np.asarray(labels)))


def run_cascade(member_probs, thresholds, rule: str, costs, stage_weights=None) -> CascadeOutcome:
    """Applies a cascade to precomputed member probabilities (members in cascade order)."""
    stages = stage_probabilities(member_probs, stage_weights)
    cum = cumulative_costs(costs)
    if len(cum) != len(stages):
        raise UdcError(f"{len(stages)} members but {len(cum)} costs")
    conf = np.stack([confidence(p, rule) for p in stages])
    exits = exit_stages(conf, thresholds)
    preds = np.stack([p.argmax(axis=1) for p in stages])
    n = np.arange(len(exits))
    return CascadeOutcome(predictions=preds[exits, n], exit_stage=exits, cost=cum[exits],
                          num_stages=len(stages))


def order_by_cost(costs) -> list[int]:
    """Member indices, cheapest first (stable for equal costs)."""
    return [int(i) for i in np.argsort(np.asarray(costs, dtype=np.float64), kind="stable")]
