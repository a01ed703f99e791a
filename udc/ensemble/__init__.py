"""Flexible ensembles with early exit over exported .tflite classifiers.

Members run cheapest first; each stage combines the members seen so far and exits
when it is confident enough, trading quality of result against average cost. From a pool
of models, `select_members` picks the subset whose cascade serves the cost range best.

    from udc.ensemble import Cascade
    cascade = Cascade.load("ensemble_out/cascade.json")
    labels = cascade.predict(images)  # NHWC, scaled like the calibration images (float in [0, 1]); others are refused

The names below load on first use, so the pure-numpy logic (`udc.ensemble.cascade`,
`udc.ensemble.calibration`) imports without TensorFlow.
"""

import importlib

_EXPORTS = {
    "RULES": "cascade", "CascadeOutcome": "cascade", "confidence": "cascade", "run_cascade": "cascade",
    "OperatingPoint": "calibration", "pareto_front": "calibration", "select": "calibration",
    "sweep": "calibration",
    "Cascade": "descriptor",
    "Member": "members", "check_held_out": "members", "load_members": "members",
    "select_members": "selection",
    "COST_METRICS": "pipeline", "calibrate": "pipeline",
    "report": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'udc.ensemble' has no attribute '{name}'")
    module = _EXPORTS[name]
    if module is None:
        return importlib.import_module(f"udc.ensemble.{name}")
    return getattr(importlib.import_module(f"udc.ensemble.{module}"), name)
