"""Backbones: plain tf_keras models by name, or a user's model file (`udc.models.user_model`)."""

from udc.errors import ConfigError
from udc.models.ds_cnn import ds_cnn
from udc.models.fmnist_cnn import fmnist_cnn
from udc.models.mobilenet_v1 import mobilenet_v1
from udc.models.resnet8 import resnet8
from udc.models.user_model import is_model_file, load_user_model

BACKBONES = {"fmnist_cnn": fmnist_cnn, "ds_cnn": ds_cnn, "mobilenet_v1": mobilenet_v1, "resnet8": resnet8}


def build_backbone(name: str, input_shape, num_classes: int, **kwargs):
    """Backbone `name` (one of `BACKBONES`, or the path of a `.keras` file) for the data's shape and classes;
    `widths=` sets a named backbone's largest widths."""
    if is_model_file(name):
        return load_user_model(name, input_shape, num_classes, **kwargs)
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}'; choose one of: {', '.join(sorted(BACKBONES))}, "
                          "or the path of a saved tf_keras model (.keras)")
    return BACKBONES[name](input_shape, num_classes, **kwargs)


__all__ = ["BACKBONES", "build_backbone", "ds_cnn", "fmnist_cnn", "mobilenet_v1", "resnet8"]
