"""The steps the binaries chain, driven by a config: train the backbone, export it."""

import copy
import json
from pathlib import Path

from udc.data import load_splits
from udc.deploy.export import export_model
from udc.deploy.model_io import load_model, save_model
from udc.errors import ConfigError
from udc.targets import target_of
from udc.training.backbone import train_float_model
from udc.workdir_lock import workdir_lock

# Times a child is selected again, aiming lower, after Vela measured its export over the cycle budget.
MAX_CYCLE_RESELECTIONS = 2
from udc.workflows.config_counts import check_counts


def train_and_save(config, workdir, log=print, widths=None, splits=None):
    """Trains the config's backbone (resuming an interrupted run) into WORKDIR/model.keras;
    `widths` overrides the backbone's own; `splits`: the config's data, if the caller has it."""
    check_counts(config, "train")
    if splits is None:
        splits = load_splits(config)  # a bad dataset fails before the workdir is made
    with workdir_lock(workdir) as workdir:
        log(f"training {config.backbone} on {splits.name}: {len(splits.train)} train, "
            f"{len(splits.val)} validation, {len(splits.test)} test images")
        model = train_float_model(config, splits, workdir, widths)
        log(f"saved {save_model(model, workdir / 'model.keras')}")
    return model, splits


def float_model(config, splits, path, log=print):
    """The trained float backbone of a config at PATH (a .keras file), trained into its folder with the
    config's `train` section if it is not there yet: what the baselines fine-tune and a search
    warm-starts from, trained once and shared by udc-search, udc-benchmark and udc-ensemble. It has
    the widths of the config's supernet (`search.max_widths`, when set)."""
    path = Path(path)
    if path.exists():
        model = load_model(path)
    else:
        model, _ = train_and_save(config, path.parent, log=log, widths=config.search.max_widths, splits=splits)
    classes = int(model.output_shape[-1])
    if classes != splits.num_classes or tuple(model.input_shape[1:]) != splits.input_shape:
        raise ConfigError(
            f"{path} takes {tuple(model.input_shape[1:])} and gives {classes} classes, but dataset "
            f"'{splits.name}' has {splits.input_shape} images and {splits.num_classes} classes; "
            "use a fresh --workdir for another dataset")
    return model


def float_model_path(config, workdir) -> Path:
    """Where the float model a search starts from lives: search.float_model, else WORKDIR/float/model.keras."""
    return Path(config.search.float_model or Path(workdir) / "float" / "model.keras")


def export_from_config(model, splits, config, output_dir, name="model", target_name=None, log=print):
    return export_model(model, splits, target_of(config, target_name), output_dir, name=name,
                        config=config, num_calibration=config.export.num_calibration,
                        tflm_samples=config.export.tflm_samples, log=log)


def check_budgets(budgets_kb) -> None:
    """ConfigError unless the list holds distinct positive KiB budgets."""
    if not budgets_kb:
        raise ConfigError("the budget list is empty; give UDC budgets such as --budgets_kb=6,12,24,48")
    if any(b <= 0 for b in budgets_kb):
        raise ConfigError(f"budgets must be positive KiB values, got {list(budgets_kb)}")
    if len(set(budgets_kb)) != len(budgets_kb):
        raise ConfigError(f"a budget is listed twice in {list(budgets_kb)}; list each budget once")


def budget_workdir(workdir, budget_kb) -> Path:
    """Where the search at one budget lives under WORKDIR (udc-benchmark and udc-ensemble share it)."""
    return Path(workdir) / f"udc_{budget_kb:g}kb"


def with_budget(config, budget_kb, float_model=None, supernet=None):
    """A copy of the config that searches under `budget_kb` KiB (from the float model at `float_model`,
    with the trained supernet in the folder `supernet`, both shared by every budget)."""
    budget_config = copy.deepcopy(config)
    budget_config.budget_kb = float(budget_kb)
    if float_model is not None:
        budget_config.search.float_model = str(float_model)
    if supernet is not None:
        budget_config.search.supernet = str(supernet)
    return budget_config


def budget_plan(config, workdir, budgets_kb) -> list:
    """[(budget KiB, its config, its workdir)] of searches that share WORKDIR/float/model.keras and
    the supernet trained once in WORKDIR/supernet (udc-benchmark and udc-ensemble: train once,
    search many); the supernet and the float model are made by the first search that needs them."""
    return [(kb, with_budget(config, kb, shared_float_model_path(workdir), Path(workdir) / "supernet"),
             budget_workdir(workdir, kb)) for kb in budgets_kb]


def shared_float_model_path(workdir) -> Path:
    """The float model several budgets' searches (and the baselines) share under WORKDIR."""
    return Path(workdir) / "float" / "model.keras"


def search_and_export(config, workdir, log=print, stop_after_epochs=None, export=True,
                      stop_after_finetune_epochs=None, splits=None):
    """udc-search: supernet search under the budget -> strip -> QAT fine-tune -> export, checked by Vela;
    `splits`: the config's data, if the caller has it.

    Holds WORKDIR's lock for the whole run (`udc.workdir_lock`) and resumes from it; one whose
    export finished with this config gives back its report at once (`finished_report`).
    Returns the report (with a "search" section), the arch spec if `export` is False, or None
    if `stop_after_epochs` (search) or `stop_after_finetune_epochs` interrupted the run.
    """
    from udc.search.settings import budget_bytes, budget_cycles, check_supported, check_training, search_options

    check_counts(config, "search")  # bad input fails before anything is written to the workdir
    target = target_of(config)  # an unknown target too
    search_options(config)  # bad option lists too
    check_training(config)
    budget_bytes(config)
    budget_cycles(config, target)
    if splits is None:
        splits = load_splits(config)  # a bad dataset too
    check_supported(config, target, splits)  # an option the target cannot run too
    with workdir_lock(workdir) as workdir:
        return _search_and_export_locked(config, splits, workdir, log, stop_after_epochs, export,
                                         stop_after_finetune_epochs)


def _search_and_export_locked(config, splits, workdir, log, stop_after_epochs, export,
                              stop_after_finetune_epochs):
    import time

    from udc.deploy.finetune import FineTuneCheckpoint
    from udc.deploy.ship import FINETUNE_DIR, ship_child
    from udc.search.loop import SupernetSearch
    from udc.search.settings import KIB, budget_bytes
    from udc.search.state import check_resumable_workdir

    started = time.perf_counter()
    target = target_of(config)
    budget = budget_bytes(config)
    # Refused or unreadable resume files fail before any slow work.
    check_resumable_workdir(config, workdir)
    FineTuneCheckpoint(workdir / FINETUNE_DIR).read()
    interrupting = stop_after_epochs is not None or stop_after_finetune_epochs is not None
    finished = finished_report(config, workdir) if export and not interrupting else None
    if finished is not None:
        log(f"{workdir} holds a finished search of this config; its report:")
        log((workdir / "report.md").read_text())
        return finished
    search = SupernetSearch(config, splits, workdir, log=log)
    smallest = search.check_feasible()
    budgets = ([f"{budget} B ({budget / KIB:g} KiB)"] if budget else []) + (
        [f"{search.budget_cycles:,} cycles"] if search.budget_cycles else [])
    log(f"search space: {len(search.layers)} layers; smallest network {smallest} B, budget "
        f"{' and '.join(budgets)} on {target.name}")
    # A classifier, a layer flattened from a map, a held Concatenate's branch (udc.space.derive) or a narrow layer.
    held = [layer.name for layer in search.layers if layer.has_width_choice and len(layer.widths) == 1]
    if held:
        log(f"  width held (one option): {', '.join(held)}")

    def trained_float():
        path = float_model_path(config, workdir)
        return float_model(config, splits, path, log=log), path

    if not search.run(stop_after_epochs, float_model=trained_float if config.search.warm_start else None):
        log("stopped as asked; rerun to resume")
        return None
    search_seconds = time.perf_counter() - started
    history = search.history()
    fields = {"smallest_network_bytes": smallest, "search_seconds": search_seconds,
              "supernet_step_seconds": median_step_seconds(history, "supernet"),
              "search_step_seconds": median_step_seconds(history, "search"), "history": history}

    def ship(choices, reselections):
        return ship_child(config, splits, search, choices, workdir, target, selection=search.selection,
                          teacher=lambda: trained_float()[0], fields={**fields, "cycle_reselections": reselections},
                          started=started, export=export, stop_after_finetune_epochs=stop_after_finetune_epochs,
                          log=log)

    return ship_reselecting(search, ship, log)


def ship_reselecting(search, ship, log=print):
    """`ship(search.select(), reselections)`; where Vela measures the export over the cycle budget
    (`udc.deploy.ship.CycleBudgetMissed`), up to `MAX_CYCLE_RESELECTIONS` times: the search's cycle target
    lowered by the share the estimate missed, a child selected for it and shipped instead.

    Why: the cycle tables measure each layer in probes of other widths, and in a network of other
    neighbours a layer can take more (measured: a 2:4 convolution 6,101 cycles in its probe, 9,123 in
    the exported child, where its weights' fetch was no longer hidden behind the layer before)."""
    from udc.deploy.ship import CycleBudgetMissed

    reselections = []
    while True:
        try:
            return ship(search.select(), reselections)
        except CycleBudgetMissed as missed:
            if len(reselections) == MAX_CYCLE_RESELECTIONS:
                raise
            search.target_cycles *= missed.estimated_cycles / missed.vela_cycles
            reselections.append({"vela_cycles": missed.vela_cycles, "estimated_cycles": missed.estimated_cycles,
                                 "new_limit_cycles": int(search.target_cycles)})
            log(f"Vela measures {missed.vela_cycles:,} cycles, the estimate was {missed.estimated_cycles:,}: "
                f"selecting again under {search.target_cycles:,.0f} estimated cycles")


def median_step_seconds(history, stage):
    """The median step time of a stage's epochs (None if it has none)."""
    times = sorted(h["step_seconds"] for h in history if h["stage"] == stage)
    return float(times[len(times) // 2]) if times else None


def finished_report(config, workdir):
    """The report of a search, fine-tune and export that finished in WORKDIR with this very config, else None.

    Finished: report.json has its "search" section and describes the model.tflite beside
    it (same sha256); the config is the one the .tflite's metadata records; Vela measured it within
    the cycle budget (an export that missed it is selected again, `ship_reselecting`).
    """
    from udc import tflite_file
    from udc.report.model_report import sha256
    from udc.training.checkpoints import corrupt, read_json

    path, model = workdir / "report.json", workdir / "model.tflite"
    if not model.is_file():
        return None
    report = read_json(path, workdir, keys=("tflite",))
    if report is None or "search" not in report or not report["search"].get("within_cycle_budget", True):
        return None
    if not isinstance(report["tflite"], dict) or "sha256" not in report["tflite"]:
        raise corrupt(path, "no tflite.sha256", workdir)
    data = model.read_bytes()
    if report["tflite"]["sha256"] != sha256(data):
        return None
    recorded = (tflite_file.read_metadata(data) or {}).get("config")
    return report if recorded == json.loads(json.dumps(config.to_dict())) else None
