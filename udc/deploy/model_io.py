"""Saving and loading tf_keras models (float or QAT) atomically.

A QAT model (tfmot's quantize wrappers with udc's grid quantizers) is written in the HDF5
format even under a .keras name: tf_keras' own .keras format cannot load tfmot's layers
back (their variables are built twice on loading: "expected 5 variables, but received 3"),
and `load_model` picks the format by the file's content, not by its name.
"""

import os
import tempfile
import warnings
from pathlib import Path

from udc.compat import keras
from udc.errors import UdcError
from udc.fileio import ensure_writable_dir, umask_mode


def _custom_objects_scope():
    """tfmot's QAT wrappers and udc's own grid quantizers (a fine-tuned model_qat.keras holds both)."""
    import tensorflow_model_optimization as tfmot

    from udc.space.quantizers import CUSTOM_OBJECTS

    return tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS)


def is_qat_model(model) -> bool:
    """True if the model holds tfmot's quantization layers (a model after `quantize_apply`)."""
    return any(type(layer).__module__.startswith("tensorflow_model_optimization") for layer in model.layers)


def save_model(model, path) -> Path:
    """Saves in the Keras format; a crash leaves the previous file (if any) intact."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
    os.close(fd)
    try:
        if is_qat_model(model):
            with warnings.catch_warnings():  # keras calls HDF5 "legacy"; it is the one that loads these layers
                warnings.simplefilter("ignore", UserWarning)
                model.save(tmp, save_format="h5")
        else:
            model.save(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_model(path):
    path = Path(path)
    if not path.exists():
        raise UdcError(f"model file {path} does not exist; train one with udc-train or check the path")
    try:
        with _custom_objects_scope():
            return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as e:
        raise UdcError(
            f"{path} is neither a tf_keras model (.keras, .h5, SavedModel) nor a TFLite flatbuffer ({e})"
        ) from None
