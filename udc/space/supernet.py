"""Supernets: backbones written with searchable layers (the largest shape of each layer).

`fmnist_supernet` mirrors `fmnist_cnn` (five 3x3 convolutions with BatchNorm and ReLU
inside, global average pool, Dense classifier). Every convolution chooses its width, kernel size
(those of `SearchOptions.kernel_sizes` its stride allows, `SearchOptions.kernel_sizes_for`; it holds the
largest), weight pattern, sparsity and bits; the classifier keeps its classes and chooses its pattern, sparsity
and bits (the patterns each kind takes: `SearchOptions.patterns_for`).
Each layer's `input_from` is the previous searchable layer, so the size model and the
hard sub-kernel follow the previous layer's width.
"""

import math

from udc.compat import keras
from udc.errors import ConfigError
from udc.models.fmnist_cnn import BN_MOMENTUM, DEFAULT_WIDTHS, KERNEL_SIZE, STRIDES
from udc.space import SearchableConv2D, SearchableDense, SearchOptions


def fmnist_supernet(input_shape, num_classes: int, options: SearchOptions, widths=DEFAULT_WIDTHS,
                    name="fmnist_supernet"):
    if len(widths) != len(STRIDES):
        raise ConfigError(f"fmnist_cnn has {len(STRIDES)} convolutions, got {len(widths)} widths; "
                          "fix --config.search.max_widths")
    inputs = keras.Input(shape=input_shape, name="image")
    x, previous, size = inputs, None, tuple(input_shape[:2])
    for i, (width, stride) in enumerate(zip(widths, STRIDES)):
        layer_widths = None if options.widths is None else options.widths_for(int(width))
        kernel_sizes = options.kernel_sizes_for(KERNEL_SIZE, size, (stride, stride))
        previous = SearchableConv2D(
            int(width), kernel_sizes[-1], strides=stride, padding="same", kernel_sizes=kernel_sizes,
            widths=layer_widths, sparsities=options.sparsities,
            bits=options.bits, patterns=options.patterns_for("conv"), alignment=options.alignment, batch_norm=True,
            activation="relu", bn_momentum=BN_MOMENTUM, input_from=previous, name=f"conv{i}")
        x = previous(x)
        size = tuple(math.ceil(n / stride) for n in size)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = SearchableDense(num_classes, widths=[num_classes], sparsities=options.sparsities, bits=options.bits,
                              patterns=options.patterns_for("dense"), alignment=options.alignment,
                              input_from=previous, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


SUPERNETS = {"fmnist_cnn": fmnist_supernet}


def build_supernet(backbone: str, input_shape, num_classes: int, options: SearchOptions, widths=None):
    if backbone not in SUPERNETS:
        raise ConfigError(f"no supernet for backbone '{backbone}'; searchable backbones: {', '.join(SUPERNETS)}")
    kwargs = {"widths": tuple(widths)} if widths else {}
    return SUPERNETS[backbone](input_shape, num_classes, options, **kwargs)
