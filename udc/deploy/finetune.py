"""Quantization-aware fine-tuning of a stripped model with its bit grids and sparsity kept.

Every Conv2D / DepthwiseConv2D / Dense of the stripped model is annotated with
`GridQuantizeConfig(bits)` (per channel for convolutions, depthwise ones included; per tensor for Dense) and the model
goes through `tfmot.quantization.keras.quantize_apply`. Two traps (docs/stack_facts.md):

* tfmot's layout transform replaces a custom config on a Conv followed by a separate
  ReLU: the stripped model keeps activations inside its layers, and
  `check_quantize_configs` verifies after `quantize_apply` that every annotated layer
  still holds its GridQuantizeConfig with the chosen bits (UdcError otherwise).
* a fully pruned output channel would saturate its int32 bias: `udc.deploy.convert` gives such
  channels a sane range at conversion (the tests export one).

Pruned weights stay zero: `KeepPruned` multiplies each kernel by its sparsity mask after
every training step (the forward pass always sees the masked kernel), so the exported
tensor has at least the chosen sparsity and at most 2^b - 1 distinct int8 codes.

Given the target (`keep_sizes_for`), the fine-tune keeps each layer's encoded bytes at what the
stripped model had (`udc.deploy.size_keeping`), so the export costs what the search selected instead of
drifting away from it.

The recipe (`Recipe`; `udc.deploy.ship` builds it from the config's `search.finetune_*` keys)
adds to plain QAT at a constant rate what the schedule of a float training taught: a short
warm-up, then a cosine decay of the learning rate to 0 over the fine-tune (the issue's measurement: 8 epochs of
fmnist_cnn at a constant 1e-3 reach 89.4 %, 3 more at 1e-4 reach 92.4 %), the search's
augmentation (`udc.training.augment`), and distillation from the trained float model the search
started from (`udc.training.distillation`): the compressed student learns the teacher's softened
outputs beside the labels. The baselines' uniform4 recipes use the plain default.

The epochs are udc's own loop (`udc.training.epoch_loop`): the batches of epoch e come in the order
of (seed, e), each epoch is checkpointed with its optimizer state (`FineTuneCheckpoint`),
so a resumed fine-tune ends with the same weights as an uninterrupted one, and a step that
leaves a weight non-finite stops the fine-tune there.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from udc.compat import keras, tf
from udc.deploy.fold import WEIGHT_LAYERS
from udc.deploy.size_keeping import EVERY_STEPS, SizeKeeper
from udc.errors import UdcError
from udc.fileio import write_json_atomic
from udc.space.quantizers import CUSTOM_OBJECTS, GridQuantizeConfig
from udc.training import checkpoints
from udc.training.augment import Augmentation
from udc.training.backbone import keras_accuracy
from udc.training.distillation import distillation_loss
from udc.training.epoch_loop import all_finite, epoch_batches, learning_rate_schedule, named, non_finite_error
from udc.training.progress import StepProgress

import tensorflow_model_optimization as tfmot  # noqa: E402  (after compat picked tf_keras)

STATE_FILE = "state.json"
# The cosine schedule's warm-up, as a fraction of the fine-tune's steps: a stripped model has its
# BatchNorm folded, and at the peak rates that suit the smallest children (8e-3) a 64 KiB child
# diverged within its first epoch when the rate started at its peak.
WARMUP_FRACTION = 0.1
RECOVERY_EPOCH = 10**5  # the batch order of a recovery: one no fine-tune epoch uses

def quantize_model(plain, bits):
    """The QAT model of a stripped model: GridQuantizeConfig on every layer `bits` ({layer name: bits},
    `ArchSpec.bits()`) names."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        if layer.name in bits and isinstance(layer, WEIGHT_LAYERS):
            per_axis = not isinstance(layer, keras.layers.Dense)  # per channel, as the search's grid and the file
            return annotate(copy, GridQuantizeConfig(bits[layer.name], per_axis=per_axis))
        return copy

    annotated = keras.models.clone_model(plain, clone_function=clone)
    annotated.set_weights(plain.get_weights())
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        qat = tfmot.quantization.keras.quantize_apply(annotated)
    check_quantize_configs(qat, bits)
    return qat


def wrapped_layers(qat):
    """{inner layer name: QuantizeWrapper} of a QAT model."""
    return {layer.layer.name: layer for layer in qat.layers if hasattr(layer, "quantize_config")}


def check_quantize_configs(qat, bits):
    """Every layer `bits` names must still hold its GridQuantizeConfig after quantize_apply."""
    wrappers = wrapped_layers(qat)
    for name, layer_bits in bits.items():
        config = getattr(wrappers.get(name), "quantize_config", None)
        if not isinstance(config, GridQuantizeConfig) or config.bits != layer_bits:
            raise UdcError(f"tfmot replaced the {layer_bits}-bit grid config of layer {name} by {type(config).__name__}; "
                           "keep the activation inside the layer (docs/stack_facts.md)")


def kernel_of(wrapper):
    """The kernel variable of a QuantizeWrapper (its layer's `kernel` attribute is the fake-quantized tensor)."""
    for weight, _, _ in getattr(wrapper, "_weight_vars", []):
        if isinstance(weight, tf.Variable):
            return weight
    raise UdcError(f"no kernel variable in {wrapper.name}")


def step_factor_of(wrapper) -> float:
    """The grid step factor the wrapper's kernel is quantized with (`udc.deploy.size_keeping` sets it)."""
    for _, quantizer, _ in getattr(wrapper, "_weight_vars", []):
        if hasattr(quantizer, "step_factor"):
            return float(quantizer.step_factor.numpy())
    return 1.0


class KeepPruned:
    """Re-applies the sparsity masks to the kernels (after every training step, and once at the start)."""

    def __init__(self, qat, masks):
        wrappers = wrapped_layers(qat)
        self.pairs = [(kernel_of(wrappers[name]), tf.constant(mask)) for name, mask in masks.items()]

    def apply(self):
        for kernel, mask in self.pairs:
            kernel.assign(kernel * mask)


class FineTuneCheckpoint:
    """The fine-tune's resume files in one directory: a tf.train checkpoint of the QAT model and its
    optimizer after every epoch, and `state.json` naming it, with the settings it was made with.

    A state of other settings (other zeros after a budget repair, another learning rate) is
    not resumed: the fine-tune starts over and overwrites it.
    """

    def __init__(self, directory, settings=None):
        self.directory, self.settings = Path(directory), settings
        self.workdir = self.directory.parent  # what an error tells the user to delete
        self.state_path = self.directory / STATE_FILE

    def read(self):
        """The state (None if none), after checking its checkpoint can be read."""
        state = checkpoints.read_json(self.state_path, self.workdir, keys=("epochs_done", "checkpoint", "settings"))
        if state is not None and state["epochs_done"]:
            checkpoints.check_readable(self.directory / state["checkpoint"], self.workdir)
        return state

    def restore(self, checkpoint) -> int:
        """Restores the epochs done with these settings; their number (0: start from the stripped model)."""
        state = self.read()
        if state is None or state["settings"] != self.settings or not state["epochs_done"]:
            return 0
        checkpoints.restore(checkpoint, self.directory / state["checkpoint"], self.workdir)
        return state["epochs_done"]

    def save(self, manager, epochs_done):
        path = manager.save(checkpoint_number=epochs_done)  # first the checkpoint, then the state naming it
        write_json_atomic(self.state_path, {"epochs_done": epochs_done, "checkpoint": Path(path).name,
                                            "settings": self.settings})


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the fine-tune trains beyond plain QAT at a constant rate (the defaults add nothing)."""

    lr_schedule: str = "constant"  # "cosine": up to the learning rate (WARMUP_FRACTION), then down to 0
    augmentation: Augmentation = Augmentation()
    teacher: object = None  # a float model of the same task whose logits the QAT model learns
    distillation_weight: float = 0.0  # (1 - w) cross-entropy + w KD(teacher); 0 without a teacher
    distillation_temperature: float = 1.0
    # Instead of the cross-entropy / distillation mix: loss(labels, logits, teacher_logits) -> scalar, for training
    # rules of one's own (tools/ensemble_member_rules.py trains ensemble members against a reference with it).
    loss: object = None

    def __post_init__(self):
        if (self.distillation_weight or self.loss is not None) and self.teacher is None:
            raise UdcError("fine-tune distillation or a loss of the teacher's logits needs a teacher model")

    def settings(self) -> dict:
        """What a fine-tune checkpoint depends on (the teacher by its presence: one per workdir; a loss of one's
        own by its name, and only when given, so a checkpoint of the usual recipe still resumes)."""
        settings = {"lr_schedule": self.lr_schedule, "augmentation": dataclasses.asdict(self.augmentation),
                    "distillation_weight": self.distillation_weight,
                    "distillation_temperature": self.distillation_temperature}
        if self.loss is not None:
            settings["loss"] = getattr(self.loss, "__name__", repr(self.loss))
        return settings


def qat_step(qat, masks, learning_rate, recipe=Recipe(), total_steps=1, seed=0):
    """(traced training step of `qat` that keeps the masks' zeros, its variables, its new Adam, the
    augmentation's random generator, which `_train_steps` reseeds per epoch)."""
    variables = qat.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate_schedule(recipe.lr_schedule, learning_rate, total_steps,
                                                             int(WARMUP_FRACTION * total_steps)))
    optimizer.build(variables)
    keep = KeepPruned(qat, masks)
    keep.apply()
    generator = tf.random.Generator.from_seed(seed)

    @tf.function
    def step(x, y):
        x = recipe.augmentation(x, generator)
        with tf.GradientTape() as tape:
            logits = qat(x, training=True)
            teacher = logits if recipe.teacher is None else recipe.teacher(x, training=False)
            if recipe.loss is not None:
                loss = recipe.loss(y, logits, teacher)
            else:
                loss = distillation_loss(y, logits, teacher, recipe.distillation_weight,
                                         recipe.distillation_temperature)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        keep.apply()
        correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), tf.cast(y, tf.int32))
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32)), all_finite(variables + [loss])

    return step, variables, optimizer, generator


def check_masks_kept(qat, masks) -> None:
    """UdcError if a pruned weight is no longer zero."""
    for name, mask in masks.items():
        kernel = kernel_of(wrapped_layers(qat)[name]).numpy()
        if np.any(kernel[mask == 0] != 0):
            raise UdcError(f"pruned weights of {name} moved away from zero during fine-tuning")


def finetune(plain, bits, masks, splits, *, epochs, learning_rate, batch_size, seed=0, recipe=Recipe(),
             keep_sizes_for=None, checkpoint_dir=None, steps_per_epoch=None, stop_after_epochs=None, log=print):
    """QAT fine-tuning of `plain` at `bits` ({layer name: bits}, `ArchSpec.bits()`) with the zeros of
    `masks` ({layer name: 0/1 kernel mask}) kept; returns the QAT model (ready for `udc.deploy.export.export_model`).

    keep_sizes_for: a udc.targets.Target whose weight codec measures the layers; each keeps the encoded bytes
    it starts with (`udc.deploy.size_keeping`). None: every grid step from max|w| alone.

    Deterministic: the same inputs and seed give the same weights, whether or not the run
    was interrupted. With `checkpoint_dir` (WORKDIR/finetune), every epoch is checkpointed
    there and a rerun resumes after the last one. `stop_after_epochs` stops after that many
    epochs and returns None (a simulated interruption).
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    qat = quantize_model(plain, bits)
    steps = len(splits.train) // batch_size
    steps = min(steps, steps_per_epoch) if steps_per_epoch else steps
    step, variables, optimizer, generator = qat_step(qat, masks, learning_rate, recipe, epochs * steps, seed)
    keeper = SizeKeeper(qat, keep_sizes_for) if keep_sizes_for else None

    saver = manager = None
    done = 0
    if checkpoint_dir is not None:
        settings = {"bits": bits, "zeros": {name: int(mask.size - np.count_nonzero(mask))
                                             for name, mask in sorted(masks.items())},
                    "learning_rate": learning_rate, "batch_size": batch_size,
                    "seed": seed, "steps_per_epoch": steps_per_epoch or 0, "epochs": epochs,
                    "recipe": recipe.settings(), "keep_sizes_for": keep_sizes_for.name if keep_sizes_for else ""}
        saver = FineTuneCheckpoint(checkpoint_dir, json.loads(json.dumps(settings)))
        tracked = tf.train.Checkpoint(model=qat, optimizer=optimizer)
        manager = tf.train.CheckpointManager(tracked, str(checkpoint_dir), max_to_keep=2)
        done = saver.restore(tracked)
    if epochs > 0 and done < epochs:
        log(f"QAT fine-tuning for {epochs} epochs" + (f", resuming after epoch {done}" if done else "") + " ...")
    elif epochs <= 0:
        qat(splits.train.x[:batch_size], training=True)  # sets the grid ranges from the weights
    resumed_after = done
    for epoch in range(done, epochs):
        if stop_after_epochs is not None and epoch >= stop_after_epochs:
            return None
        label = f"fine-tune epoch {epoch + 1}/{epochs}" + (
            f" (resumed after epoch {resumed_after})" if resumed_after and epoch == resumed_after else "")
        kept = (f"kept the last good checkpoint (after fine-tune epoch {epoch}) in {checkpoint_dir}"
                if saver is not None and epoch else "no fine-tune checkpoint is kept")
        losses, accuracies = _train_steps(step, variables, generator, splits, batch_size, seed, epoch, steps,
                                          label, f"fine-tune epoch {epoch + 1}", kept,
                                          keeper.keep if keeper else None)
        kept_sizes = ""
        if keeper:  # before the checkpoint: it holds the ranges of the kept steps
            factors = keeper.keep()
            kept_sizes = f", grid steps x{min(factors.values()):.2f}..{max(factors.values()):.2f} keep the sizes"
        val = f" val {keras_accuracy(qat, splits.val):.2%}" if len(splits.val) else ""
        log(f"{label}: loss {np.mean(losses):.4f} acc {np.mean(accuracies):.2%}{val}{kept_sizes}")
        if saver is not None:
            saver.save(manager, epoch + 1)
    check_masks_kept(qat, masks)
    return qat


def recover(qat, masks, splits, *, steps, learning_rate, batch_size, seed=0, log=print):
    """A short QAT recovery of `qat` in place after its masks grew (`udc.deploy.budget_repair`): `steps` batches."""
    step, variables, _, generator = qat_step(qat, masks, learning_rate)
    steps = min(steps, len(splits.train) // batch_size)
    label = f"recovery ({steps} steps)"
    losses, accuracies = _train_steps(step, variables, generator, splits, batch_size, seed, RECOVERY_EPOCH, steps,
                                      label, "recovery", "the model before the repair is in model_qat.keras")
    val = f" val {keras_accuracy(qat, splits.val):.2%}" if len(splits.val) else ""
    log(f"{label}: loss {np.mean(losses):.4f} acc {np.mean(accuracies):.2%}{val}")
    check_masks_kept(qat, masks)
    return qat


def _train_steps(step, variables, generator, splits, batch_size, seed, epoch, steps, label, where, kept,
                 keep_sizes=None):
    """Runs `steps` batches of epoch `epoch`; (losses, accuracies). Stops at a non-finite weight,
    saying `where` (as "fine-tune epoch 2") and what was `kept`. `keep_sizes` (a `SizeKeeper.keep`)
    runs before the epoch's first step and every EVERY_STEPS steps."""
    progress = StepProgress(label, steps)
    generator.reset_from_seed(seed * 100003 + epoch)  # an epoch's augmentation, resumed or not
    losses, accuracies = [], []
    for i, (x, y) in enumerate(epoch_batches(splits.train, batch_size, seed, epoch, steps)):
        if keep_sizes and i % EVERY_STEPS == 0:
            keep_sizes()
        loss, accuracy, finite = step(x, y)
        if not finite:
            progress.clear()
            raise non_finite_error(f"{where} step {i + 1}", {"loss": loss, **named(variables)}, kept,
                                   "check the training data for NaN, or lower the fine-tuning learning rate "
                                   "(--config.search.finetune_learning_rate)")
        losses.append(float(loss))
        accuracies.append(float(accuracy))
        progress.update(i + 1, losses[-1])
    progress.clear()
    return losses, accuracies
