"""Supernets of the backbones: each derived from the plain model (`udc.space.derive`).

`build_supernet` builds the backbone of `udc.models` (a name, or a user's `.keras` file) at its largest widths and
derives its supernet: every convolution chooses its width, kernel size (those of `SearchOptions.kernel_sizes` its
stride allows; it holds the largest), weight pattern, sparsity and bits; the classifier keeps its classes and
chooses its pattern, sparsity and bits (the patterns each kind takes: `SearchOptions.patterns_for`).
"""

from udc.models import build_backbone
from udc.models.fmnist_cnn import DEFAULT_WIDTHS, fmnist_cnn
from udc.space.derive import derive_supernet
from udc.space.options import SearchOptions


def fmnist_supernet(input_shape, num_classes: int, options: SearchOptions, widths=DEFAULT_WIDTHS,
                    name="fmnist_supernet"):
    """The supernet of `fmnist_cnn` (five 3x3 convolutions with BatchNorm and ReLU inside, global average pool,
    Dense classifier)."""
    return derive_supernet(fmnist_cnn(input_shape, num_classes, widths=widths), options, name=name)


def build_supernet(backbone: str, input_shape, num_classes: int, options: SearchOptions, widths=None):
    """The supernet of `backbone` (see `udc.models.build_backbone`); `widths` are its largest widths (default: the
    backbone's own)."""
    plain = build_backbone(backbone, input_shape, num_classes, **({"widths": tuple(widths)} if widths else {}))
    return derive_supernet(plain, options, name=f"{plain.name}_supernet")
