"""What a search config means: its budgets, search options, training rule and relaxation, and
the fingerprint of the keys a checkpoint depends on (`udc.search.state`)."""

import json
import math

from udc.costs.size_model import plain_layer_kind
from udc.deploy.fold import WEIGHT_LAYERS
from udc.errors import ConfigError
from udc.models import build_backbone
from udc.space import SearchOptions
from udc.space.options import DEFAULT_PATTERNS, pattern_options
from udc.targets import target_of
from udc.training.epoch_loop import LR_SCHEDULES

KIB = 1024
# Keys of what follows the search (fine-tune, budget repair): the search stage's checkpoints do
# not depend on them, so a workdir whose search is done fine-tunes again with new values.
AFTER_SEARCH_KEYS = ("search.finetune_epochs", "search.finetune_learning_rate", "search.finetune_lr_schedule",
                     "search.finetune_distillation_weight", "search.finetune_augment", "search.repair_steps")
# Keys the trained supernet does not depend on: searches that differ only in these share it.
PER_BUDGET_KEYS = ("budget_kb", "search.budget_kb", "budget_cycles", "search.budget_cycles", "budget_ms",
                   "search.budget_ms", "search.search_epochs",
                   "search.arch_learning_rate", "search.dual_learning_rate", "search.fill_budget",
                   "search.budget_margin", "search.cycle_margin", "search.candidates", "search.end_temperature",
                   "search.relaxation", "search.supernet") + AFTER_SEARCH_KEYS
# Keys that change nothing the checkpoints hold: a resume may differ in them.
_RESUME_IGNORES = ("data_dir", "download", "export.tflm_samples", "export.num_calibration",
                   "export.system_config", "export.memory_mode", "search.tensorboard", "train.")

TRAINING_RULES = ("sandwich", "soft")
RELAXATIONS = ("gumbel_softmax", "straight_through", "relaxed_then_straight_through")


def straight_through_at(relaxation: str, step: int, total_steps: int) -> bool:
    """Whether search step `step` of `total_steps` forwards one sampled child (straight-through):
    always, never, or from the second half on (`relaxed_then_straight_through`: the mixture's
    steps concentrate the distribution first, then whole children rank what is left)."""
    if relaxation == "relaxed_then_straight_through":
        return step >= total_steps // 2
    return relaxation == "straight_through"


def check_training(config) -> None:
    """ConfigError for a training rule or learning-rate schedule udc does not know (before any work)."""
    s = config.search
    if s.training not in TRAINING_RULES:
        raise ConfigError(f"unknown search.training '{s.training}'; choose one of: {', '.join(TRAINING_RULES)} "
                          "in --config.search.training")
    if s.relaxation not in RELAXATIONS:
        raise ConfigError(f"unknown search.relaxation '{s.relaxation}'; choose one of: {', '.join(RELAXATIONS)} "
                          "in --config.search.relaxation")
    for key in ("lr_schedule", "finetune_lr_schedule"):
        if s[key] not in LR_SCHEDULES:
            raise ConfigError(f"unknown learning-rate schedule '{s[key]}'; choose one of: "
                              f"{', '.join(LR_SCHEDULES)} in --config.search.{key}")


def search_options(config) -> SearchOptions:
    s = config.search
    return SearchOptions.for_target(
        target_of(config), sparsities=tuple(s.sparsities), bits=tuple(s.bits),
        widths=None if s.widths is None else tuple(s.widths), patterns=tuple(s.get("patterns", DEFAULT_PATTERNS)),
        kernel_sizes=None if s.get("kernel_sizes") is None else tuple(s.kernel_sizes))


def check_supported(config, target, splits) -> None:
    """ConfigError, before any training, for a sparsity or bit-width of the search's option lists that
    `target` cannot run on a layer kind of the config's backbone (`Target.unsupported`), for a weight
    pattern it runs on none of them (the kinds it cannot take a pattern on stay dense), and for a kernel
    size no convolution of the backbone can take (`SearchOptions.kernel_sizes_for`)."""
    backbone = build_backbone(config.backbone, splits.input_shape, splits.num_classes)
    kinds = sorted({plain_layer_kind(layer) for layer in backbone.layers if isinstance(layer, WEIGHT_LAYERS)})
    _check_kernel_sizes(config, backbone, search_options(config))
    for pattern in pattern_options(tuple(config.search.get("patterns", DEFAULT_PATTERNS)))[1:]:
        reasons = [target.unsupported(kind, "pattern", pattern) for kind in kinds]
        if all(reasons):
            raise ConfigError(f"{target.name} cannot run the weight pattern {pattern} on any layer of "
                              f"{config.backbone}: {reasons[0]}; drop {pattern} from --config.search.patterns "
                              "or choose another --config.accelerator (e.g. ethos-u85-256)")
    for dimension, flag, options in (("sparsity", "sparsities", config.search.sparsities),
                                     ("bits", "bits", config.search.bits)):
        for kind in kinds:
            for option in options:
                reason = target.unsupported(kind, dimension, option)
                if reason:
                    raise ConfigError(f"{target.name} cannot run {dimension} {option} on the {kind} layers of "
                                      f"{config.backbone}: {reason}; drop {option} from --config.search.{flag} "
                                      "or choose another --config.accelerator")


def _check_kernel_sizes(config, backbone, options) -> None:
    if options.kernel_sizes is None:
        return
    convolutions = [layer for layer in backbone.layers if plain_layer_kind(layer) != "dense"
                    and isinstance(layer, WEIGHT_LAYERS)]
    taken = {k for layer in convolutions
             for k in options.kernel_sizes_for(layer.kernel_size[0], layer.input_shape[1:3], layer.strides, layer.padding)}
    for k in options.kernel_sizes:
        if k not in taken:
            raise ConfigError(f"no convolution of {config.backbone} can take a {k}x{k} kernel as the centre of a "
                              f"{options.kernel_sizes[-1]}x{options.kernel_sizes[-1]} one (its stride and padding "
                              f"would shift it); drop {k} from --config.search.kernel_sizes")


def budget_cycles(config, target) -> int:
    """The cycle budget in NPU cycles: `budget_cycles`, or `budget_ms` at `target`'s clock (0: none)."""
    cycles, ms = (config.search.get(key, 0) or 0 for key in ("budget_cycles", "budget_ms"))
    for key, value in (("budget_cycles", cycles), ("budget_ms", ms)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{key} must be a number >= 0 (0: no latency budget), got {value!r}; "
                              f"set --config.{key}")
    if cycles and ms:
        raise ConfigError(f"budget_cycles ({cycles}) and budget_ms ({ms}) both set a latency budget; "
                          "set one of them to 0")
    if cycles and int(cycles) != cycles:
        raise ConfigError(f"budget_cycles must be a whole number of NPU cycles, got {cycles!r}; set --config.budget_cycles")
    return int(cycles) if cycles else int(ms * 1e-3 * target.clock_hz)


def budget_bytes(config) -> int:
    """The byte budget in bytes (0: none, allowed only beside a latency budget)."""
    budget = float(config.search.budget_kb or 0)
    latency = any(config.search.get(key, 0) for key in ("budget_cycles", "budget_ms"))
    if budget == 0 and latency:
        return 0
    if not budget > 0 or math.isinf(budget):
        raise ConfigError(f"budget_kb must be a positive number of KiB (0 only beside --config.budget_cycles or "
                          f"--config.budget_ms), got {budget}; set --config.budget_kb")
    return int(budget * KIB)


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def flat_config(config, ignore=()) -> dict:
    """Every key of a config ("search.bits"), JSON-ready, less those in `ignore` (a key, or a prefix
    ending in ".")."""
    flat = json.loads(json.dumps(_flatten(config.to_dict()), default=str))
    return {k: v for k, v in flat.items() if not any(k == i or (i.endswith(".") and k.startswith(i))
                                                      for i in ignore)}


def config_fingerprint(config, ignore=()) -> dict:
    """The config keys a checkpoint depends on (flattened, JSON-ready), less those in `ignore`."""
    return flat_config(config, _RESUME_IGNORES + tuple(ignore))


# Keys added after checkpoints were written, with the value that does what their absence did:
# a state saved without one resumes under that value.
_ADDED_KEYS = {"budget_cycles": 0, "search.budget_cycles": 0, "budget_ms": 0, "search.budget_ms": 0,
               "search.cycle_margin": 0.03, "search.relaxation": "gumbel_softmax", "search.patterns": ["dense"],
               "search.kernel_sizes": None, "split_seed": None}


def config_differences(saved: dict, current: dict) -> list:
    saved = {**{k: v for k, v in _ADDED_KEYS.items() if k in current}, **saved}
    keys = sorted(set(saved) | set(current))
    return [f"{k}: {saved.get(k, '(absent)')} -> {current.get(k, '(absent)')}"
            for k in keys if saved.get(k) != current.get(k)]
