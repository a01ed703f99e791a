"""A chosen child of a trained supernet, shipped: arch spec, strip, QAT fine-tune, int8 export,
the budget checked by Vela (and repaired when it is missed), the report.

The searched child (`udc.workflows.pipeline.search_and_export`) and the controls' children
(`udc.workflows.controls`) go through this same path, so they differ only in how they were chosen.
"""

import time

from udc.deploy.export import export_model
from udc.deploy.model_io import save_model
from udc.errors import UdcError
from udc.fileio import write_text_atomic
from udc.space.patterns import DENSE

FINETUNE_DIR = "finetune"  # the fine-tune's checkpoints in a search's WORKDIR
MAX_EXPORTS = 4  # the first export and up to three budget repairs (udc.deploy.budget_repair)
REPAIR_SLACK = 0.005  # a repair prunes the excess plus this share of the budget
# A repair's recovery runs at this share of the fine-tune's peak rate: it nudges a model that
# the cosine schedule has just brought to rest, it does not retrain it.
RECOVERY_RATE_SHARE = 0.1


class CycleBudgetMissed(UdcError):
    """Vela measures the export over the cycle budget: the child's cycle estimate at selection was low."""

    def __init__(self, message, vela_cycles: int, estimated_cycles: int):
        super().__init__(message)
        self.vela_cycles, self.estimated_cycles = vela_cycles, estimated_cycles


def finetune_recipe(config, teacher):
    """The fine-tune's `udc.deploy.finetune.Recipe` from the config's search.finetune_* keys and `augment`."""
    from udc.deploy.finetune import Recipe
    from udc.training.augment import Augmentation

    s = config.search
    return Recipe(lr_schedule=s.finetune_lr_schedule,
                  augmentation=Augmentation.from_config(config.get("augment") if s.finetune_augment else None),
                  teacher=teacher, distillation_weight=float(s.finetune_distillation_weight),
                  distillation_temperature=float(s.distillation_temperature))


def ship_child(config, splits, search, choices, workdir, target, *, selection, teacher, fields=None,
               started=None, export=True, stop_after_finetune_epochs=None, log=print):
    """Ships the child `choices` of `search`'s supernet from WORKDIR; returns the report (with a
    "search" section: the size figures, `fields` and the arch spec), the arch spec if `export` is
    False, or None if `stop_after_finetune_epochs` interrupted the fine-tune.

    `selection` is recorded in the arch spec (how the child was chosen); `teacher` is a callable
    giving the float model, called only when the recipe distils from it. The report's
    `total_seconds` count from `started` (a `time.perf_counter()`; default: now).
    """
    from udc.arch import measure_arch_spec
    from udc.deploy.budget_repair import prune_to_save
    from udc.deploy.finetune import finetune, recover
    from udc.deploy.strip import strip
    from udc.report.model_report import to_markdown, write_report

    started = time.perf_counter() if started is None else started
    s = config.search
    budget = search.budget
    cycle_fields = {}
    if search.budget_cycles:
        search.use_cycle_tables()
        cycle_fields = {"budget_cycles": search.budget_cycles, "limit_cycles": int(search.target_cycles),
                        "estimated_cycles": search.cycles.exact(choices)}
    spec = measure_arch_spec(search.model, choices, search.sizes.tables, extra_bytes=search.sizes.pool_bytes(choices),
                             backbone=config.backbone, dataset=splits.name, budget_bytes=budget,
                             limit_bytes=int(search.target_bytes), selection=selection, **cycle_fields)
    spec.save(workdir / "arch_spec.json")
    log(f"arch spec: {spec.codec_bytes} B by the codec, {spec.estimated_bytes:.0f} B estimated "
        f"-> {workdir / 'arch_spec.json'}")
    search.recalibrate_batch_norm(choices)  # the stripped model folds these statistics
    plain, masks = strip(search.model, choices)
    save_model(plain, workdir / "stripped.keras")
    if not export:
        return spec
    distilling = float(s.finetune_distillation_weight) > 0
    qat = finetune(plain, spec.bits(), masks, splits, epochs=int(s.finetune_epochs),
                   learning_rate=float(s.finetune_learning_rate), batch_size=int(s.batch_size),
                   seed=config.seed, recipe=finetune_recipe(config, teacher() if distilling else None),
                   keep_sizes_for=target,
                   checkpoint_dir=workdir / FINETUNE_DIR, steps_per_epoch=int(s.steps_per_epoch) or None,
                   stop_after_epochs=stop_after_finetune_epochs, log=log)
    if qat is None:
        log("stopped fine-tuning as asked; rerun to resume")
        return None
    repairs = []
    for attempt in range(1, MAX_EXPORTS + 1):
        log(f"saved {save_model(qat, workdir / 'model_qat.keras')}")
        report = export_model(qat, splits, target, workdir, name="model", config=config, arch_spec=spec,
                              num_calibration=config.export.num_calibration,
                              tflm_samples=config.export.tflm_samples, log=log)
        vela_bytes = report["vela"]["encoded_weight_bytes"]
        log(f"Vela: {vela_bytes} B encoded weights, " + (f"budget {budget} B" if budget else "no byte budget"))
        if not budget or vela_bytes <= budget:
            break
        if attempt == MAX_EXPORTS:
            raise UdcError(f"Vela still measures {vela_bytes} B > budget {budget} B after {attempt - 1} repairs; "
                           "raise --config.search.budget_margin (the search aims lower) or --config.budget_kb")
        # The slack covers what Vela counts beyond the per-layer codec (stream splits, padding).
        need = vela_bytes - budget + max(16, int(REPAIR_SLACK * budget))
        log(f"over budget by {vela_bytes - budget} B: pruning {need} B out of the fine-tuned model")
        repairs += prune_to_save(qat, masks, spec, need, target, log=log)
        spec.repairs = repairs
        spec.save(workdir / "arch_spec.json")
        recover(qat, masks, splits, steps=int(s.repair_steps),
                learning_rate=RECOVERY_RATE_SHARE * float(s.finetune_learning_rate),
                batch_size=int(s.batch_size), seed=config.seed, log=log)
    if search.budget_cycles:
        vela_cycles = report["vela"]["cycles"]
        cycle_fields = {"budget_cycles": search.budget_cycles, "vela_cycles": vela_cycles,
                        "within_cycle_budget": vela_cycles <= search.budget_cycles,
                        "selection_cycles_estimate": spec.estimated_cycles,
                        "selection_cycles_error": spec.estimated_cycles / vela_cycles - 1.0}
    report["search"] = {
        "budget_bytes": budget, "vela_encoded_bytes": vela_bytes, "within_budget": not budget or vela_bytes <= budget,
        **size_figures(spec, (workdir / "model.tflite").read_bytes(), target, vela_bytes), **cycle_fields,
        "export_attempts": attempt, "budget_repairs": repairs, "total_seconds": time.perf_counter() - started,
        **(fields or {}), "arch_spec": spec.to_json(),
    }
    write_report(report, workdir)
    markdown = to_markdown(report) + search_markdown(report["search"])
    write_text_atomic(workdir / "report.md", markdown)  # replaces the plain report with the searched one
    log(markdown)
    if search.budget_cycles and not cycle_fields["within_cycle_budget"]:
        raise CycleBudgetMissed(f"Vela measures {cycle_fields['vela_cycles']:,} cycles > budget_cycles "
                                f"{search.budget_cycles:,} (estimated {spec.estimated_cycles:,} at selection); the "
                                f"model and its report are in {workdir}; raise --config.search.cycle_margin (the "
                                "search aims lower) or --config.budget_cycles",
                                cycle_fields["vela_cycles"], spec.estimated_cycles)
    return report


def size_figures(spec, data, target, vela_bytes) -> dict:
    """The size model against Vela, at selection (supernet weights) and on the exported .tflite.

    selection_*: the arch spec's figures, made before fine-tuning moved the weights.
    export_*: `size_model.exported_bytes` of the file itself, in the target's own weight
    encoding (the size model calibrated on these weights) and, as
    `export_plain_codec_*`, the codec on the stored stream.
    """
    from udc.costs import narrowing, size_model as sm

    exported = sm.exported_bytes(data, target)
    plain = sm.exported_bytes(data, target, order="flat")
    figures = {"selection_estimate_bytes": spec.estimated_bytes, "selection_codec_bytes": spec.codec_bytes,
               "export_estimate_bytes": exported["total"], "export_plain_codec_bytes": plain["total"]}
    figures.update({k.replace("_bytes", "_error"): v / vela_bytes - 1.0 for k, v in figures.items()})
    # In the order of the spec's layers: the converter may order the operators otherwise (`layer_operators`).
    position = {op: n for n, op in enumerate(narrowing.weight_operator_indices(data))}
    figures["export_layer_bytes"] = [exported["layers"][position[op]] for op in
                                     narrowing.layer_operators(data, [layer.name for layer in spec.layers])]
    return figures


def _kernel_text(layer: dict) -> str:
    """'3x3' (or '10x4') for a convolution of a report's arch spec; empty for Dense and for a spec from before
    kernel sizes."""
    shape = layer.get("kernel_shape") or ([layer["kernel_size"]] * 2 if layer.get("kernel_size") else None)
    return "" if layer["kind"] == "dense" or shape is None else f"{shape[0]}x{shape[1]}"


def search_markdown(search) -> str:
    lines = ["", "## Search", "",
             (f"Budget {search['budget_bytes']:,} B; Vela {search['vela_encoded_bytes']:,} B "
              f"({'within' if search['within_budget'] else 'OVER'} budget); " if search["budget_bytes"] else
              f"No byte budget; Vela {search['vela_encoded_bytes']:,} B; ")
             + f"{search['export_attempts']} export(s)"
             + "".join(f"; repair: {r['layer']} +{r['pruned']} zeros (sparsity {r['sparsity']:.1%}, "
                       f"-{r['saved_bytes']} B by the codec)" for r in search.get("budget_repairs", []))
             + f"; {search['total_seconds']:.0f} s in all."
             + (f" Cycle budget {search['budget_cycles']:,}; Vela {search['vela_cycles']:,} cycles "
                f"({'within' if search['within_cycle_budget'] else 'OVER'} budget), estimated "
                f"{search['selection_cycles_estimate']:,} at selection ({search['selection_cycles_error']:+.2%})."
                if "budget_cycles" in search else "")
             + "".join(f" Selected again after Vela measured {r['vela_cycles']:,} cycles (estimated "
                       f"{r['estimated_cycles']:,}), under {r['new_limit_cycles']:,} estimated cycles."
                       for r in search.get("cycle_reselections", [])), "",
             "Size model against Vela's encoded weight bytes:", "",
             "| figure | bytes | vs Vela |", "|---|---|---|",
             f"| estimate at selection (supernet weights) | {search['selection_estimate_bytes']:,.0f} | "
             f"{search['selection_estimate_error']:+.2%} |",
             f"| codec at selection (supernet weights) | {search['selection_codec_bytes']:,} | "
             f"{search['selection_codec_error']:+.2%} |",
             f"| estimate of the exported weights | {search['export_estimate_bytes']:,} | "
             f"{search['export_estimate_error']:+.2%} |",
             f"| codec of the exported weights, stored order | {search['export_plain_codec_bytes']:,} | "
             f"{search['export_plain_codec_error']:+.2%} |", "",
             "| layer | width | input | kernel | sparsity | bits | selection estimate B | selection codec B | "
             "exported B |", "|---|---|---|---|---|---|---|---|---|"]
    for layer, exported in zip(search["arch_spec"]["layers"], search["export_layer_bytes"]):
        pattern = layer.get("pattern", DENSE)  # a report from before weight patterns has none
        width = layer["input_width"] if layer["kind"] == "depthwise" else layer["width"]  # a depthwise layer's is its input's
        lines.append(f"| {layer['name']} | {width} | {layer['input_width']} | {_kernel_text(layer)} | "
                     f"{'' if pattern == DENSE else pattern + '+'}{layer['sparsity']:.0%} | "
                     f"{layer['bits']} | {layer['estimated_bytes']:.0f} | {layer['codec_bytes']} | {exported} |")
    return "\n".join(lines) + "\n"
