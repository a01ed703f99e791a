"""A user's own functional tf_keras model, named by its `.keras` file (`--config.backbone=path/to/model.keras`).

udc takes the architecture and the weights from the file: udc-train continues training from them, udc-search
derives the supernet from the model (`udc.space.derive`) and warm-starts it from the float model trained from
them. The file must be a model of the data's input shape with one output of the data's classes.
"""

from pathlib import Path

from udc.compat import keras
from udc.errors import ConfigError

SUFFIXES = (".keras", ".h5")


def is_model_file(backbone: str) -> bool:
    return str(backbone).endswith(SUFFIXES)


def load_user_model(path, input_shape, num_classes: int, widths=None):
    """The model saved at `path`, checked against the data's `input_shape` and `num_classes`."""
    path = Path(path)
    if widths is not None:
        raise ConfigError(f"--config.search.max_widths does not apply to the model file {path}; save the model at the "
                          "widths to search from and leave max_widths unset")
    if not path.is_file():
        raise ConfigError(f"backbone model file {path} does not exist; give the path of a saved tf_keras model "
                          "(model.save('model.keras')) or a backbone name")
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{path} is not a tf_keras model file udc can load ({reason}); save the model with tf_keras "
                          "(tf_keras.Model.save) from built-in layers") from None
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"{path} holds a model with {len(getattr(model, 'inputs', []))} inputs and "
                          f"{len(getattr(model, 'outputs', []))} outputs; udc searches functional models with one of "
                          "each")
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise ConfigError(f"{path} takes inputs of shape {tuple(model.input_shape[1:])} but the dataset's are "
                          f"{tuple(input_shape)}; save the model for the dataset's input shape")
    if model.output_shape[-1] != num_classes:
        raise ConfigError(f"{path} has {model.output_shape[-1]} outputs but the dataset {num_classes} classes; save "
                          f"the model with a {num_classes}-unit classifier")
    return model
