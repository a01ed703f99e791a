"""How a cascade stage combines the members seen so far: a log-linear pool fitted on the validation
split, or the plain average (kept for comparison).

Why not the average: members of unequal quality average to less than the best of them (four UDC
models of 6-48 KiB: the full ensemble at 86.43 %, its best member at 88.02 %,
benchmarks/fashion_mnist/ensemble_udc.md). The log-linear pool of stage k answers
softmax(sum_j w_kj log p_j) over members j = 0..k, with non-negative weights fitted by the
validation split's negative log-likelihood: a multinomial logistic regression on the members'
log-probabilities (convex in w; a single member's weight is its inverse temperature). A stage whose
pool is less accurate on validation than one of its members alone (that member's temperature
fitted the same way) answers with that member: on validation no stage loses to its best member.
Pure numpy and scipy, no models.
"""

import numpy as np
from scipy.optimize import minimize

from udc.errors import UdcError

COMBINATIONS = ("log_linear", "average")
_FLOOR = 1e-7  # the smallest probability a member's log takes: an int8 softmax output can be 0
# The least weight a pooled member gets: a badly calibrated member's best weight can be 0 (its
# inverse temperature: uniform beats it in likelihood), which would leave a stage no answer at all.
MIN_WEIGHT = 1e-3


def check_combination(name: str) -> str:
    if name not in COMBINATIONS:
        raise UdcError(f"unknown combination '{name}'; choose one of: {', '.join(COMBINATIONS)}")
    return name


def _log(member_probs) -> np.ndarray:
    return np.log(np.clip(np.stack([np.asarray(p, np.float64) for p in member_probs]), _FLOOR, 1.0))


def pooled(member_probs, weights) -> np.ndarray:
    """softmax(sum_j weights[j] * log p_j) per row: the log-linear pool of the members' probabilities."""
    logs = _log(member_probs)
    weights = np.asarray(weights, np.float64)
    if len(weights) != len(logs):
        raise UdcError(f"{len(weights)} combination weights for {len(logs)} members")
    logits = np.tensordot(weights, logs, axes=1)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_pool(member_probs, labels) -> np.ndarray:
    """The weights (at least MIN_WEIGHT) of the log-linear pool of `member_probs` with the least negative
    log-likelihood of `labels` (bounded L-BFGS; the problem is convex)."""
    logs = _log(member_probs)  # (members, n, classes)
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    picked = logs[:, rows, labels]  # (members, n)

    def loss_and_grad(w):
        logits = np.tensordot(w, logs, axes=1)
        top = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - top)
        z = e.sum(axis=1, keepdims=True)
        q = e / z
        nll = np.mean(np.log(z[:, 0]) + top[:, 0] - logits[rows, labels])
        grad = np.mean((q[None] * logs).sum(axis=2) - picked, axis=1)
        return nll, grad

    start = np.full(len(logs), 1.0 / len(logs))
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", bounds=[(MIN_WEIGHT, None)] * len(logs))
    return np.asarray(result.x, np.float64)


def _accuracy(probs, labels) -> float:
    return float(np.mean(np.asarray(probs).argmax(axis=1) == np.asarray(labels)))


def fit_stage_weights(member_probs, labels) -> list[np.ndarray]:
    """Per stage k (members 0..k, cascade order), the weights of its members: the fitted pool, or one
    member alone at its fitted temperature where that member is more accurate on `labels` (the
    validation split's) than the pool."""
    stages = []
    for k in range(len(member_probs)):
        seen = member_probs[:k + 1]
        weights = fit_pool(seen, labels)
        best = _accuracy(pooled(seen, weights), labels)
        for j, probs in enumerate(seen):
            alone = _accuracy(probs, labels)
            if alone > best:
                best = alone
                weights = np.zeros(k + 1)
                weights[j] = fit_pool([probs], labels)[0]
        stages.append(weights)
    return stages


def check_stage_weights(stage_weights, num_members: int) -> list[np.ndarray]:
    """UdcError unless `stage_weights` holds, for each of `num_members` stages k, k + 1 finite
    non-negative weights, not all zero."""
    stage_weights = list(stage_weights)
    if len(stage_weights) != num_members:
        raise UdcError(f"{len(stage_weights)} stages of combination weights for {num_members} members; "
                       "recalibrate the cascade with udc-ensemble")
    checked = []
    for k, weights in enumerate(stage_weights):
        w = np.asarray(weights, np.float64).reshape(-1)
        if len(w) != k + 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise UdcError(f"stage {k + 1} needs {k + 1} finite non-negative combination weights, not all zero, "
                           f"got {np.asarray(weights).tolist()}; recalibrate the cascade with udc-ensemble")
        checked.append(w)
    return checked
