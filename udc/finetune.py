"""Quantization-aware fine-tuning of a stripped model with its bit grids and sparsity kept.

Every Conv2D / DepthwiseConv2D / Dense of the stripped model is annotated with
`GridQuantizeConfig(bits)` (per-axis for Conv2D, per tensor otherwise) and the model
goes through `tfmot.quantization.keras.quantize_apply`. Two traps (DESIGN.md):

* tfmot's layout transform replaces a custom config on a Conv followed by a separate
  ReLU: the stripped model keeps activations inside its layers, and
  `check_quantize_configs` verifies after `quantize_apply` that every annotated layer
  still holds its GridQuantizeConfig with the chosen bits (UdcError otherwise).
* a fully pruned output channel would saturate its int32 bias: `udc.convert` gives such
  channels a sane range at conversion (the tests export one).

Pruned weights stay zero: `KeepPruned` multiplies each kernel by its sparsity mask after
every training step (the forward pass always sees the masked kernel), so the exported
tensor has at least the chosen sparsity and at most 2^b - 1 distinct int8 codes.
"""

import numpy as np

from udc.compat import keras, tf
from udc.errors import UdcError
from udc.fold import WEIGHT_LAYERS
from udc.search_space.quantizers import CUSTOM_OBJECTS, GridQuantizeConfig

import tensorflow_model_optimization as tfmot  # noqa: E402  (after compat picked tf_keras)


def _bits_of(arch):
    return {layer["name"]: int(layer["bits"]) for layer in arch["layers"]}


def quantize_model(plain, arch):
    """The QAT model of a stripped model: GridQuantizeConfig(bits) on every layer the arch spec names."""
    bits = _bits_of(arch)
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        if layer.name in bits and isinstance(layer, WEIGHT_LAYERS):
            per_axis = isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D)
            return annotate(copy, GridQuantizeConfig(bits[layer.name], per_axis=per_axis))
        return copy

    annotated = keras.models.clone_model(plain, clone_function=clone)
    annotated.set_weights(plain.get_weights())
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        qat = tfmot.quantization.keras.quantize_apply(annotated)
    check_quantize_configs(qat, arch)
    return qat


def wrapped_layers(qat):
    """{inner layer name: QuantizeWrapper} of a QAT model."""
    return {layer.layer.name: layer for layer in qat.layers if hasattr(layer, "quantize_config")}


def check_quantize_configs(qat, arch):
    """Every layer of the arch spec must still hold GridQuantizeConfig(bits) after quantize_apply."""
    wrappers = wrapped_layers(qat)
    for name, bits in _bits_of(arch).items():
        config = getattr(wrappers.get(name), "quantize_config", None)
        if not isinstance(config, GridQuantizeConfig) or config.bits != bits:
            raise UdcError(f"tfmot replaced the {bits}-bit grid config of layer {name} by {type(config).__name__}; "
                           "keep the activation inside the layer (DESIGN.md)")


def kernel_of(wrapper):
    """The kernel variable of a QuantizeWrapper (its layer's `kernel` attribute is the fake-quantized tensor)."""
    for weight, _, _ in getattr(wrapper, "_weight_vars", []):
        if isinstance(weight, tf.Variable):
            return weight
    raise UdcError(f"no kernel variable in {wrapper.name}")


class KeepPruned(keras.callbacks.Callback):
    """Re-applies the sparsity masks to the kernels after every batch (and once at the start)."""

    def __init__(self, qat, masks):
        super().__init__()
        wrappers = wrapped_layers(qat)
        self.pairs = [(kernel_of(wrappers[name]), tf.constant(mask)) for name, mask in masks.items()]

    def apply(self):
        for kernel, mask in self.pairs:
            kernel.assign(kernel * mask)

    def on_train_begin(self, logs=None):
        self.apply()

    def on_train_batch_end(self, batch, logs=None):
        self.apply()


def finetune(plain, arch, masks, splits, *, epochs, learning_rate, batch_size, seed=0, backup_dir=None,
             steps_per_epoch=None, log=print):
    """QAT fine-tuning; returns the QAT model (ready for `udc.export.export_model`)."""
    keras.utils.set_random_seed(seed)
    qat = quantize_model(plain, arch)
    qat.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    keep = KeepPruned(qat, masks)
    keep.apply()
    callbacks = [keep]
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    if epochs > 0:
        log(f"QAT fine-tuning for {epochs} epochs ...")
        data = splits.train.tf_dataset(batch_size, shuffle=True, seed=seed)
        if steps_per_epoch:  # epochs of `steps_per_epoch` batches from an endless shuffled stream
            data = data.repeat()
        history = qat.fit(data, validation_data=splits.val.tf_dataset(256) if len(splits.val) else None,
                          epochs=epochs, steps_per_epoch=steps_per_epoch or None, callbacks=callbacks, verbose=0)
        for i in range(len(history.history.get("loss", []))):
            h = {k: v[i] for k, v in history.history.items()}
            log(f"fine-tune epoch {i + 1}/{epochs}: loss {h['loss']:.4f} acc {h['accuracy']:.2%}"
                + (f" val {h['val_accuracy']:.2%}" if "val_accuracy" in h else ""))
    else:
        qat(splits.train.x[:batch_size], training=True)  # sets the grid ranges from the weights
    for name, mask in masks.items():
        kernel = kernel_of(wrapped_layers(qat)[name]).numpy()
        if np.any(kernel[mask == 0] != 0):
            raise UdcError(f"pruned weights of {name} moved away from zero during fine-tuning")
    return qat
