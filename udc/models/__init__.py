"""Backbones by name."""

from udc.errors import ConfigError
from udc.models.fmnist_cnn import fmnist_cnn

BACKBONES = {"fmnist_cnn": fmnist_cnn}


def build_backbone(name: str, input_shape, num_classes: int, **kwargs):
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}'; choose one of: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](input_shape, num_classes, **kwargs)


__all__ = ["BACKBONES", "build_backbone", "fmnist_cnn"]
