"""The Pareto benchmark: tfmot baselines and UDC searches on one backbone, measured by Vela.

Every point is exported by udc's export path and measured the same way (int8 .tflite
test accuracy, Vela encoded weight bytes, flash, cycles, wall time). Each finished
point is kept in WORKDIR/points/<name>.json with the config it was measured with, so an
interrupted run resumes where it stopped and a rerun with another config (a longer fine-tune,
say) measures again the points that depend on what changed. The float model
(WORKDIR/float/model.keras) and the trained supernet (WORKDIR/supernet) are shared: the
baselines and every search start from the same float model, the supernet is trained once for
all budgets, and the controls (`udc.workflows.controls`, WORKDIR/controls/<name>) take their
children from it.
"""

import dataclasses
import time

from udc.data import load_splits
from udc.deploy.export import export_model
from udc.errors import ConfigError
from udc.fileio import ensure_writable_dir, write_json_atomic
from udc.search.settings import PER_BUDGET_KEYS, check_supported, config_differences, flat_config
from udc.targets import target_of
from udc.training.checkpoints import read_json
from udc.workflows.baselines import RECIPES, FineTuning, run_recipe
from udc.workflows.controls import ship_control
from udc.workflows.pipeline import budget_plan, check_budgets, float_model, search_and_export, shared_float_model_path


def check_plan(recipes, budgets_kb):
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise ConfigError(f"unknown recipe(s) {', '.join(unknown)}; choose from: {', '.join(RECIPES)}")
    check_budgets(budgets_kb)


def reusable_point(path, config: dict, log=print):
    """The point saved at PATH if it was measured with `config` (`flat_config`), else None. Every key counts,
    the export's too (the calibration, Vela's system config), as in `udc.workflows.pipeline.finished_report`."""
    point = read_json(path, path, keys=("name",))  # a corrupt one: deleting it measures it again
    if point is None:
        return None
    if "config" not in point:
        log(f"{path} does not record the config it was measured with; measuring it again")
        return None
    differences = config_differences(point["config"], config)
    if differences:
        log(f"{path} was measured with another config ({'; '.join(differences)}); measuring it again")
        return None
    return {k: v for k, v in point.items() if k != "config"}


def baseline_config(config, tuning: FineTuning) -> dict:
    """What a baseline depends on: the config less the search's keys (the baselines fine-tune the float model
    in WORKDIR/float), and the fine-tuning every recipe gets."""
    return {**flat_config(config, ignore=PER_BUDGET_KEYS + ("search.",)),
            **{f"tuning.{k}": v for k, v in dataclasses.asdict(tuning).items()}}


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

    def done(name, made_with):
        return reusable_point(points_dir / f"{name}.json", made_with, log)

    def keep(name, point, made_with):
        write_json_atomic(points_dir / f"{name}.json", {**point, "config": made_with})

    points = []
    model = None
    float_path = shared_float_model_path(workdir)  # the baselines' start, and every search's warm start
    made_with = baseline_config(config, tuning)
    for recipe in recipes:
        point = done(recipe, made_with)
        if point is None:
            model = model or float_model(config, splits, float_path, log)
            log(f"== baseline {recipe}")
            start = time.perf_counter()
            tuned = run_recipe(recipe, model, splits, tuning, target)
            report = export_model(tuned, splits, target, workdir / recipe, name=recipe, config=config,
                                  num_calibration=config.export.num_calibration,
                                  tflm_samples=config.export.tflm_samples, log=log)
            point = _point(recipe, "baseline", report, time.perf_counter() - start)
            keep(recipe, point, made_with)
        points.append(point)
    for kb, budget_config, budget_dir in budget_plan(config, workdir, budgets_kb):
        name = budget_dir.name
        made_with = flat_config(budget_config)
        point = done(name, made_with)
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
            keep(name, point, made_with)
        points.append(point)
    smallest_two = sorted(budgets_kb)[:2]
    for kb, budget_config, budget_dir in budget_plan(config, workdir, budgets_kb):
        controls = [("uniform", 0)] if uniform_controls else []
        controls += [("random", i) for i in range(random_controls if kb in smallest_two else 0)]
        for kind, index in controls:
            name = f"{kind}_{kb:g}kb" + (f"_{index + 1}" if kind == "random" else "")
            made_with = flat_config(budget_config)
            point = done(name, made_with)
            if point is None:
                log(f"== control {name}")
                report = ship_control(budget_config, splits, workdir / "controls" / name, kind, index, target,
                                      log=log)
                point = _point(name, "control", report, report["search"]["total_seconds"])
                point["budget_bytes"] = report["search"]["budget_bytes"]
                point["export_attempts"] = report["search"]["export_attempts"]
                point["supernet_val_accuracy"] = report["search"]["arch_spec"]["selection"]["val_accuracy"]
                keep(name, point, made_with)
            points.append(point)
    return points
