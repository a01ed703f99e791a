"""The Pareto benchmark: tfmot baselines and UDC searches on one backbone, measured by Vela.

Every point is exported by udc's export path and measured the same way (int8 .tflite
test accuracy, Vela encoded weight bytes, flash, cycles, wall time). Each finished
point is kept in WORKDIR/points/<name>.json, so an interrupted run resumes where it
stopped. The float model (WORKDIR/float/model.keras) and the trained supernet
(WORKDIR/supernet) are shared: the baselines and every search start from the same float
model, the supernet is trained once for all budgets, and the controls (`udc.workflows.controls`,
WORKDIR/controls/<name>) take their children from it.
"""

import json
import time

from udc.data import load_splits
from udc.deploy.export import export_model
from udc.errors import ConfigError
from udc.fileio import ensure_writable_dir, write_json_atomic
from udc.search.settings import check_supported
from udc.targets import target_of
from udc.workflows.baselines import RECIPES, FineTuning, run_recipe
from udc.workflows.controls import ship_control
from udc.workflows.pipeline import budget_plan, check_budgets, float_model, search_and_export, shared_float_model_path


def check_plan(recipes, budgets_kb):
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise ConfigError(f"unknown recipe(s) {', '.join(unknown)}; choose from: {', '.join(RECIPES)}")
    check_budgets(budgets_kb)


def _point(name, kind, report, seconds):
    v = report["vela"]
    return {"name": name, "kind": kind, "accuracy": report["accuracy"]["int8_tflite"],
            "keras_accuracy": report["accuracy"]["keras"], "encoded_bytes": v["encoded_weight_bytes"],
            "flash_kib": v["flash_kib"], "cycles": v["cycles"], "npu_fraction": v["npu_fraction"],
            "wall_seconds": round(seconds, 1)}


def run_benchmark(config, workdir, recipes, budgets_kb, tuning: FineTuning, random_controls=0,
                  uniform_controls=False, log=print) -> list[dict]:
    """The baselines, the UDC searches and, from the same trained supernet, the controls
    (`udc.workflows.controls`): `random_controls` random children at each of the two smallest budgets
    and, with `uniform_controls`, the uniform child at every budget."""
    check_plan(recipes, budgets_kb)
    target = target_of(config)
    splits = load_splits(config)  # a bad dataset fails before the workdir is made
    check_supported(config, target, splits)  # so does an option the target cannot run
    workdir = ensure_writable_dir(workdir)
    points_dir = ensure_writable_dir(workdir / "points")

    def done(name):
        path = points_dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    points = []
    model = None
    float_path = shared_float_model_path(workdir)  # the baselines' start, and every search's warm start
    for recipe in recipes:
        point = done(recipe)
        if point is None:
            model = model or float_model(config, splits, float_path, log)
            log(f"== baseline {recipe}")
            start = time.perf_counter()
            tuned = run_recipe(recipe, model, splits, tuning, target)
            report = export_model(tuned, splits, target, workdir / recipe, name=recipe, config=config,
                                  num_calibration=config.export.num_calibration,
                                  tflm_samples=config.export.tflm_samples, log=log)
            point = _point(recipe, "baseline", report, time.perf_counter() - start)
            write_json_atomic(points_dir / f"{recipe}.json", point)
        points.append(point)
    for kb, budget_config, budget_dir in budget_plan(config, workdir, budgets_kb):
        name = budget_dir.name
        point = done(name)
        if point is None:
            log(f"== UDC search at {kb:g} KiB")
            report = search_and_export(budget_config, budget_dir, log=log)
            # The search's own time: a finished workdir is reused at once (udc.workflows.pipeline.finished_report).
            point = _point(name, "udc", report, report["search"]["total_seconds"])
            point["budget_bytes"] = report["search"]["budget_bytes"]
            point["selection_estimate_error"] = report["search"]["selection_estimate_error"]
            point["selection_codec_error"] = report["search"]["selection_codec_error"]
            point["export_attempts"] = report["search"]["export_attempts"]
            point["export_estimate_error"] = report["search"]["export_estimate_error"]
            write_json_atomic(points_dir / f"{name}.json", point)
        points.append(point)
    smallest_two = sorted(budgets_kb)[:2]
    for kb, budget_config, budget_dir in budget_plan(config, workdir, budgets_kb):
        controls = [("uniform", 0)] if uniform_controls else []
        controls += [("random", i) for i in range(random_controls if kb in smallest_two else 0)]
        for kind, index in controls:
            name = f"{kind}_{kb:g}kb" + (f"_{index + 1}" if kind == "random" else "")
            point = done(name)
            if point is None:
                log(f"== control {name}")
                report = ship_control(budget_config, splits, workdir / "controls" / name, kind, index, target,
                                      log=log)
                point = _point(name, "control", report, report["search"]["total_seconds"])
                point["budget_bytes"] = report["search"]["budget_bytes"]
                point["export_attempts"] = report["search"]["export_attempts"]
                point["supernet_val_accuracy"] = report["search"]["arch_spec"]["selection"]["val_accuracy"]
                write_json_atomic(points_dir / f"{name}.json", point)
            points.append(point)
    return points
