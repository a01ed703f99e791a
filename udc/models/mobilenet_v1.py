"""MobileNetV1 with a width multiplier, the visual-wake-words network of MLPerf Tiny (alpha 0.25 at 96x96x3).

input -> Conv 3x3 (32 alpha, /2) -> 13 depthwise-separable blocks (Depthwise 3x3 -> Conv 1x1) -> global average
pool -> Dense(classes). Every convolution is `same`-padded, has no bias and is followed by BatchNorm and ReLU (the
MLPerf Tiny reference uses ReLU).
"""

from udc.compat import keras
from udc.errors import ConfigError

# (pointwise filters at alpha 1, depthwise stride) of the 13 blocks.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
FIRST_FILTERS = 32
DEFAULT_ALPHA = 0.25
BN_MOMENTUM = 0.9  # as fmnist_cnn: Keras' 0.99 lags in short runs


def widths_at(alpha: float) -> tuple:
    """The first convolution's and each block's pointwise widths at width multiplier `alpha`."""
    return tuple(max(8, int(filters * alpha)) for filters in (FIRST_FILTERS,) + tuple(f for f, _ in BLOCKS))


DEFAULT_WIDTHS = widths_at(DEFAULT_ALPHA)


def mobilenet_v1(input_shape, num_classes: int, widths=DEFAULT_WIDTHS, name="mobilenet_v1"):
    if len(widths) != len(DEFAULT_WIDTHS):
        raise ConfigError(f"mobilenet_v1 has {len(DEFAULT_WIDTHS)} convolutions with a width, got {len(widths)} "
                          f"widths; give {len(DEFAULT_WIDTHS)} (--config.search.max_widths)")
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="conv0")(inputs)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn0")(x)
    x = keras.layers.ReLU(name="relu0")(x)
    for i, (width, (_, stride)) in enumerate(zip(widths[1:], BLOCKS), start=1):
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dw{i}_bn")(x)
        x = keras.layers.ReLU(name=f"dw{i}_relu")(x)
        x = keras.layers.Conv2D(width, 1, padding="same", use_bias=False, name=f"pw{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"pw{i}_bn")(x)
        x = keras.layers.ReLU(name=f"pw{i}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
