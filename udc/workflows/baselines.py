"""Baseline recipes a user would pick today from tensorflow-model-optimization.

Every recipe starts from the same trained float model, gets the same number of
fine-tuning epochs (split evenly between its phases when it has two), and returns a
tf_keras model ready for udc's int8 export, so its size is measured by Vela like
any other model:

- ptq_int8: post-training int8 quantization (no fine-tuning);
- qat_int8: quantize_model, then QAT;
- pqat_50/75/90: prune_low_magnitude with a polynomial schedule to 50/75/90 %
  sparsity, strip_pruning, then prune-preserving QAT
  (Default8BitPrunePreserveQuantizeScheme);
- cqat_16: cluster_weights with 16 clusters, strip_clustering, then
  cluster-preserving QAT (Default8BitClusterPreserveQuantizeScheme);
- pcqat_75_16: 75 % pruning, then sparsity-preserving clustering and
  sparsity+cluster preserving QAT;
- pqat_2_4: 2:4 sparsity along every layer's input channels (tfmot's `sparsity_m_by_n=(2, 4)`:
  in each group of 4 consecutive input-channel weights the 2 of smallest magnitude are zero,
  the pattern the Ethos-U85 runs faster), strip_pruning, then prune-preserving QAT; with
  qat_int8 (dense), the uniform baselines of mixed sparse-and-precision search;
- uniform4: every layer on a 4-bit grid stored in int8 (udc's own quantizer, the one
  the search uses), BatchNorm folded, grid QAT (`udc.deploy.finetune`);
- uniform4_sp75: 75 % pruning as in pqat_75, then the same 4-bit grid QAT with the
  pruned weights kept at zero;
- filters_<p>_aligned and _unaligned, p in 30, 35, 40, 45, 55, 60, 70: structured filter pruning
  (`udc.deploy.filter_pruning`) that keeps p % of each convolution's filters, those of largest L1
  norm (fractions where fmnist_cnn's plain widths are not all multiples of 8), then float
  fine-tuning and int8 QAT (half the epochs each); `aligned` rounds every width to the nearest
  multiple of the target's channel alignment, `unaligned` keeps the plain fraction (what a
  pruning that knows nothing of the hardware gives). Why both: one channel past a block of the
  NPU's array costs a whole extra pass (benchmarks/hardware/channel_staircase.md).
"""

import dataclasses

import tensorflow_model_optimization as tfmot

from udc.compat import keras
from udc.deploy.filter_pruning import prune_filters, pruned_widths
from udc.deploy.fold import WEIGHT_LAYERS, fold_batch_norm
from udc.errors import ConfigError
from udc.training.backbone import compile_for_training

_prune = tfmot.sparsity.keras
_cluster = tfmot.clustering.keras
_quant = tfmot.quantization.keras
_combine = tfmot.experimental.combine


@dataclasses.dataclass(frozen=True)
class FineTuning:
    """What every recipe gets: epochs of fine-tuning on the training split."""

    epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 1e-4
    seed: int = 0


def _copy(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _fit(model, splits, tuning: FineTuning, epochs: int, callbacks=()):
    compile_for_training(model, tuning.learning_rate)
    model.fit(splits.train.tf_dataset(tuning.batch_size, shuffle=True, seed=tuning.seed),
              epochs=max(1, epochs), callbacks=list(callbacks), verbose=0)
    return model


def _phases(tuning: FineTuning) -> tuple[int, int]:
    first = max(1, tuning.epochs // 2)
    return first, max(1, tuning.epochs - first)


def _pruned(model, splits, tuning: FineTuning, sparsity: float, epochs: int):
    steps = epochs * -(-len(splits.train) // tuning.batch_size)
    schedule = _prune.PolynomialDecay(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
                                      end_step=max(1, int(0.8 * steps)), frequency=max(1, steps // 20))
    pruned = _prune.prune_low_magnitude(_copy(model), pruning_schedule=schedule)
    _fit(pruned, splits, tuning, epochs, callbacks=[_prune.UpdatePruningStep()])
    return _prune.strip_pruning(pruned)


def _clustered(model, splits, tuning: FineTuning, clusters: int, epochs: int, preserve_sparsity=False):
    clustered = _cluster.cluster_weights(
        model, number_of_clusters=clusters,
        cluster_centroids_init=_cluster.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=preserve_sparsity)
    _fit(clustered, splits, tuning, epochs)
    return _cluster.strip_clustering(clustered)


def _qat(model, splits, tuning: FineTuning, epochs: int, scheme=None):
    annotated = _quant.quantize_annotate_model(model)
    qat = _quant.quantize_apply(annotated, scheme) if scheme is not None else _quant.quantize_apply(annotated)
    return _fit(qat, splits, tuning, epochs)


def ptq_int8(model, splits, tuning):
    return _copy(model)


def qat_int8(model, splits, tuning):
    return _qat(_copy(model), splits, tuning, tuning.epochs)


def _pqat(sparsity):
    def recipe(model, splits, tuning):
        prune_epochs, qat_epochs = _phases(tuning)
        pruned = _pruned(model, splits, tuning, sparsity, prune_epochs)
        return _qat(pruned, splits, tuning, qat_epochs, _combine.Default8BitPrunePreserveQuantizeScheme())
    return recipe


def pqat_2_4(model, splits, tuning):
    prune_epochs, qat_epochs = _phases(tuning)
    pruned = _prune.prune_low_magnitude(_copy(model), sparsity_m_by_n=(2, 4))
    _fit(pruned, splits, tuning, prune_epochs, callbacks=[_prune.UpdatePruningStep()])
    return _qat(_prune.strip_pruning(pruned), splits, tuning, qat_epochs,
                _combine.Default8BitPrunePreserveQuantizeScheme())


def cqat_16(model, splits, tuning):
    cluster_epochs, qat_epochs = _phases(tuning)
    clustered = _clustered(_copy(model), splits, tuning, 16, cluster_epochs)
    return _qat(clustered, splits, tuning, qat_epochs, _combine.Default8BitClusterPreserveQuantizeScheme())


def pcqat_75_16(model, splits, tuning):
    prune_epochs, rest = _phases(tuning)
    cluster_epochs, qat_epochs = _phases(FineTuning(rest, tuning.batch_size, tuning.learning_rate, tuning.seed))
    pruned = _pruned(model, splits, tuning, 0.75, prune_epochs)
    clustered = _clustered(pruned, splits, tuning, 16, cluster_epochs, preserve_sparsity=True)
    return _qat(clustered, splits, tuning, qat_epochs,
                _combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True))


def _uniform_grid(model, splits, tuning: FineTuning, bits: int, epochs: int):
    """Every Conv/Dense of `model` on a `bits`-bit grid in int8, zeros kept, after `epochs` of grid QAT."""
    from udc.deploy.finetune import finetune  # imports tfmot's quantization with udc's custom objects

    plain = fold_batch_norm(model)
    kernels = {layer.name: layer.get_weights()[0] for layer in plain.layers if isinstance(layer, WEIGHT_LAYERS)}
    masks = {name: (kernel != 0).astype("float32") for name, kernel in kernels.items() if (kernel == 0).any()}
    return finetune(plain, {name: bits for name in kernels}, masks, splits, epochs=epochs, learning_rate=tuning.learning_rate,
                    batch_size=tuning.batch_size, seed=tuning.seed, log=lambda *_: None)


def uniform4(model, splits, tuning):
    return _uniform_grid(model, splits, tuning, 4, tuning.epochs)


def uniform4_sp75(model, splits, tuning):
    prune_epochs, qat_epochs = _phases(tuning)
    pruned = _pruned(model, splits, tuning, 0.75, prune_epochs)
    return _uniform_grid(pruned, splits, tuning, 4, qat_epochs)


def _filters(percent: int, aligned: bool):
    def recipe(model, splits, tuning, target):
        recover_epochs, qat_epochs = _phases(tuning)
        alignment = target.channel_alignment("conv") if aligned else None
        pruned = prune_filters(model, pruned_widths(model, percent / 100, alignment))
        _fit(pruned, splits, tuning, recover_epochs)
        return _qat(pruned, splits, tuning, qat_epochs)
    return recipe


# Recipes whose result depends on the target (its channel alignment): called with it.
TARGET_RECIPES = {f"filters_{percent}_{kind}": _filters(percent, kind == "aligned")
                  for percent in (30, 35, 40, 45, 55, 60, 70) for kind in ("aligned", "unaligned")}
RECIPES = {
    "ptq_int8": ptq_int8,
    "qat_int8": qat_int8,
    "pqat_50": _pqat(0.50),
    "pqat_75": _pqat(0.75),
    "pqat_90": _pqat(0.90),
    "pqat_2_4": pqat_2_4,
    "cqat_16": cqat_16,
    "pcqat_75_16": pcqat_75_16,
    "uniform4": uniform4,
    "uniform4_sp75": uniform4_sp75,
    **TARGET_RECIPES,
}


def run_recipe(name: str, float_model, splits, tuning: FineTuning = FineTuning(), target=None):
    """The model of recipe `name`, fine-tuned from `float_model`, ready for udc.deploy.export
    (`target`, a udc.targets.Target, for the recipes of `TARGET_RECIPES`)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe '{name}'; choose from: {', '.join(RECIPES)}")
    if name in TARGET_RECIPES:
        if target is None:
            raise ConfigError(f"recipe '{name}' prunes to the target's channel alignment; give it a target")
        return TARGET_RECIPES[name](float_model, splits, tuning, target)
    return RECIPES[name](float_model, splits, tuning)
