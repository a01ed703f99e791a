"""From member .tflite files and a dataset to a calibrated cascade and its report.

Thresholds (and the stages' combination weights, `udc.ensemble.combination`) are chosen
on the validation split and every accuracy in the report that is called `test` is
measured on the test split with them.
"""

import dataclasses

import numpy as np

from udc.ensemble import calibration
from udc.ensemble import cascade as logic
from udc.ensemble.combination import check_combination, fit_stage_weights
from udc.ensemble.descriptor import Cascade
from udc.ensemble.inputs import InputSpec
from udc.ensemble.members import Member
from udc.ensemble.selection import select_members
from udc.errors import UdcError

COST_METRICS = ("vela_cycles", "host_latency")
COST_UNITS = {"vela_cycles": "cycles", "host_latency": "ms"}


@dataclasses.dataclass
class CalibratedCascade:
    cascade: Cascade
    report: dict


def _costs(members, metric):
    return np.array([m.cost(metric) for m in members], dtype=np.float64)


def _average_costs(exits: np.ndarray, members, metrics) -> dict:
    """Average cost per input for each metric, given each input's exit stage."""
    out = {}
    for metric in metrics:
        cum = logic.cumulative_costs(_costs(members, metric))
        out[metric] = float(cum[exits].mean()) if len(exits) else 0.0
    return out


def _storage(members) -> dict:
    """What the device stores for the cascade: every member, whatever share of inputs reaches it."""
    return {"members": len(members), "encoded_bytes": int(sum(m.encoded_bytes for m in members)),
            "flash_kib": float(sum(m.flash_kib for m in members))}


def flash_peer(pool: list[Member], val_probs, labels, costs, cascade: list[Member]) -> dict:
    """The single model a device could store instead of the cascade: of the `pool` (with its validation
    probabilities and costs), the most accurate on validation whose flash is at most what the cascade's members
    take together. Every member of the cascade fits, so there is one."""
    flash_kib = sum(m.flash_kib for m in cascade)
    fitting = [i for i, m in enumerate(pool) if m.flash_kib <= flash_kib + 1e-9]
    accuracy = {i: float(np.mean(val_probs[i].argmax(1) == labels)) for i in fitting}
    best = max(fitting, key=lambda i: (accuracy[i], -costs[i]))
    return {"name": pool[best].name, "flash_kib": pool[best].flash_kib, "val_accuracy": accuracy[best],
            "cost": float(costs[best])}


def calibrate(members: list[Member], splits, rule: str = "max_prob", cost_metric: str = "vela_cycles",
              max_drop: float | None = None, max_cost: float | None = None,
              combination: str = "log_linear", max_members: int = 0, max_cost_ratio: float | None = None,
              cheaper_than_flash_peer: bool = False, log=print) -> CalibratedCascade:
    """Orders the members cheapest first, fits how each stage combines them (`combination`) and sweeps
    thresholds on splits.val, reports on splits.test. With `max_members` (below the number given) the
    given members are a pool, and the cascade is the subset `udc.ensemble.selection` picks on splits.val.
    `max_cost_ratio` bounds the average cost as a share of the (chosen) members' full ensemble's, as `max_cost`
    does in the cost's units (see `calibration.select`). `cheaper_than_flash_peer` also keeps it below the cost of
    the cascade's flash peer (`flash_peer`): a cascade pays its flash only if it answers faster than the single
    model that flash could hold."""
    logic.check_rule(rule)
    calibration.check_goal(max_drop, max_cost, max_cost_ratio, cheaper_than_flash_peer)
    check_combination(combination)
    if cost_metric not in COST_METRICS:
        raise UdcError(f"unknown cost '{cost_metric}'; choose one of: {', '.join(COST_METRICS)}")
    calibration.check_validation_size(len(splits.val))
    if len(splits.test) == 0:
        raise UdcError("the test split is empty; the cascade needs test images to be reported on")
    shape = members[0].classifier.input_shape
    if tuple(splits.input_shape) != tuple(shape):
        raise UdcError(f"the members take inputs of shape {shape} but dataset '{splits.name}' has "
                       f"{tuple(splits.input_shape)}; choose the dataset the members were trained on")
    if members[0].classifier.num_classes != splits.num_classes:
        raise UdcError(f"the members have {members[0].classifier.num_classes} classes but dataset "
                       f"'{splits.name}' has {splits.num_classes}")
    metrics = [m for m in COST_METRICS if all(x.cost_or_none(m) is not None for x in members)]
    if cost_metric not in metrics:
        raise UdcError(f"cost '{cost_metric}' was not measured for every member")
    if cheaper_than_flash_peer and any(m.flash_kib is None for m in members):
        raise UdcError("--cheaper_than_flash_peer compares flash, which Vela measures: load the members with a "
                       "target (load_members(paths, target=...)) or drop --cheaper_than_flash_peer")
    order = logic.order_by_cost(_costs(members, cost_metric))
    members = [members[i] for i in order]
    costs = _costs(members, cost_metric)

    val_probs = [m.probabilities(splits.val.x) for m in members]
    pool, pool_val_probs, pool_costs = members, val_probs, costs
    selection = None
    if max_members and max_members < len(members):
        chosen, record = select_members(val_probs, splits.val.y, costs, rule, combination, max_members, log)
        selection = {"pool": [m.name for m in members], "chosen": [members[i].name for i in chosen],
                     **record, "steps": [{**step, "added": members[step["added"]].name} for step in record["steps"]]}
        members, costs = [members[i] for i in chosen], costs[chosen]
        val_probs = [val_probs[i] for i in chosen]
    test_probs = [m.probabilities(splits.test.x) for m in members]  # after selection: only the cascade's members

    singles = []
    for m, pv, pt in zip(members, val_probs, test_probs):
        singles.append({
            "name": m.name, "file": m.path, "sha256": m.sha256,
            "val_accuracy": float(np.mean(pv.argmax(1) == splits.val.y)),
            "test_accuracy": float(np.mean(pt.argmax(1) == splits.test.y)),
            "cost": {k: m.cost(k) for k in metrics},
            **({"storage": {"encoded_bytes": m.encoded_bytes, "flash_kib": m.flash_kib}}
               if m.encoded_bytes is not None else {}),
        })
    weights = fit_stage_weights(val_probs, splits.val.y) if combination == "log_linear" else None
    full_val = float(np.mean(logic.stage_probabilities(val_probs, weights)[-1].argmax(1) == splits.val.y))
    full_test = float(np.mean(logic.stage_probabilities(test_probs, weights)[-1].argmax(1) == splits.test.y))
    full_cost = {k: float(_costs(members, k).sum()) for k in metrics}
    if max_cost_ratio is not None:
        max_cost = max_cost_ratio * full_cost[cost_metric]
    peer, cost_cap = None, max_cost
    if cheaper_than_flash_peer:
        peer = flash_peer(pool, pool_val_probs, splits.val.y, pool_costs, members)
        below_peer = peer["cost"] * (1 - 1e-9)  # strictly fewer: an equal cost is no gain for the flash spent
        cost_cap = below_peer if max_cost is None else min(max_cost, below_peer)

    points = calibration.sweep(val_probs, splits.val.y, costs, rule, stage_weights=weights)
    front = calibration.pareto_front(points)
    try:
        chosen = calibration.select(points, full_val, max_drop=max_drop, max_cost=cost_cap)
    except calibration.GoalNotReachableError as e:
        if peer is None:
            raise
        raise calibration.GoalNotReachableError(
            f"{e}, or drop --cheaper_than_flash_peer (the flash peer {peer['name']} costs {peer['cost']:,.6g})"
        ) from None

    def on_test(thresholds):
        outcome = logic.run_cascade(test_probs, thresholds, rule, costs, weights)
        return {
            "thresholds": [float(t) for t in thresholds],
            "test_accuracy": outcome.accuracy(splits.test.y),
            "test_average_cost": _average_costs(outcome.exit_stage, members, metrics),
            "test_exit_fractions": outcome.exit_fractions,
        }

    chosen_test = on_test(chosen.thresholds)
    curve = []
    for p in front:
        row = on_test(p.thresholds)
        row.update(val_accuracy=p.accuracy, val_average_cost=p.average_cost,
                   val_exit_fractions=list(p.exit_fractions))
        curve.append(row)

    # The cascade against each single member at the same budget: the best cascade (chosen
    # on validation) whose average cost is at most the member's cost.
    versus_singles = []
    for s in singles:
        try:
            p = calibration.select(points, full_val, max_cost=s["cost"][cost_metric])
        except calibration.GoalNotReachableError:
            continue
        row = on_test(p.thresholds)
        versus_singles.append({
            "member": s["name"], "member_cost": s["cost"], "member_test_accuracy": s["test_accuracy"],
            "cascade_thresholds": row["thresholds"], "cascade_test_accuracy": row["test_accuracy"],
            "cascade_test_average_cost": row["test_average_cost"],
            "cascade_better": row["test_accuracy"] > s["test_accuracy"],
        })

    # The cascade beats the single members only if no member at or below its average cost is as
    # accurate on test. The cheapest member always qualifies: every input runs it (the tolerance
    # absorbs the rounding of a mean of equal costs).
    budget = chosen_test["test_average_cost"][cost_metric] * (1 + 1e-9)
    best_affordable = max((s for s in singles if s["cost"][cost_metric] <= budget), key=lambda s: s["test_accuracy"])
    report = {
        "rule": rule,
        "combination": {"kind": combination,
                        **({"stage_weights": [w.tolist() for w in weights]} if weights is not None else {})},
        "cost_metric": cost_metric,
        "cost_units": {k: COST_UNITS[k] for k in metrics},
        "goal": {"max_drop_points": max_drop, "max_cost": max_cost, "max_cost_ratio": max_cost_ratio,
                 "flash_peer": peer},
        "dataset": {"name": splits.name, "val_size": len(splits.val), "test_size": len(splits.test)},
        "members": singles,
        **({"storage": _storage(members)} if all(m.encoded_bytes is not None for m in members) else {}),
        "full_ensemble": {"val_accuracy": full_val, "test_accuracy": full_test, "cost": full_cost},
        "chosen": {
            "thresholds": [float(t) for t in chosen.thresholds],
            "val_accuracy": chosen.accuracy,
            "val_average_cost": chosen.average_cost,
            "val_exit_fractions": list(chosen.exit_fractions),
            "test_accuracy": chosen_test["test_accuracy"],
            "test_average_cost": chosen_test["test_average_cost"],
            "test_exit_fractions": chosen_test["test_exit_fractions"],
            "test_drop_points_vs_full_ensemble": 100 * (full_test - chosen_test["test_accuracy"]),
            "test_cost_ratio_vs_full_ensemble": {
                k: chosen_test["test_average_cost"][k] / full_cost[k] if full_cost[k] else None for k in metrics},
            "best_single_member_at_or_below_cost": {
                "name": best_affordable["name"], "test_accuracy": best_affordable["test_accuracy"],
                "cost": best_affordable["cost"]},
            "beats_best_single_member_at_or_below_cost": chosen_test["test_accuracy"] > best_affordable["test_accuracy"],
        },
        "versus_single_members": versus_singles,
        **({"member_selection": selection} if selection else {}),
        "curve": curve,
        "sweep": {"points": len(points), "pareto_points": len(front)},
    }
    return CalibratedCascade(Cascade(members, chosen.thresholds, rule, input_spec=InputSpec.of_images(splits.val.x),
                                     stage_weights=weights), report)
