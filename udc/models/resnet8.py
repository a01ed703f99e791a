"""ResNet-8, the image-classification network of MLPerf Tiny (CIFAR-10).

input -> Conv 3x3 (16) -> three residual stacks of two 3x3 convolutions (16, 32 /2, 64 /2), the second and third
with a 1x1 strided convolution on the shortcut -> global average pool -> Dense(classes). Every 3x3 convolution is
`same`-padded, has no bias and is followed by BatchNorm; ReLU follows the first convolution of a stack and each
residual Add. The reference has a bias on the shortcut convolutions and no BatchNorm after them, as here.
"""

from udc.compat import keras
from udc.errors import ConfigError

DEFAULT_WIDTHS = (16, 32, 64)  # per stack; the first convolution has the first stack's width (the Add joins them)
BN_MOMENTUM = 0.9  # as fmnist_cnn: Keras' 0.99 lags in short runs


def _conv_bn(x, width, strides, name, relu):
    x = keras.layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def resnet8(input_shape, num_classes: int, widths=DEFAULT_WIDTHS, name="resnet8"):
    if len(widths) != len(DEFAULT_WIDTHS):
        raise ConfigError(f"resnet8 has {len(DEFAULT_WIDTHS)} residual stacks, got {len(widths)} widths; "
                          f"give {len(DEFAULT_WIDTHS)} (--config.search.max_widths)")
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, widths[0], 1, "conv0", relu=True)
    for stack, width in enumerate(widths, start=1):
        strides = 1 if stack == 1 else 2
        y = _conv_bn(x, width, strides, f"stack{stack}_a", relu=True)
        y = _conv_bn(y, width, 1, f"stack{stack}_b", relu=False)
        if stack > 1:
            x = keras.layers.Conv2D(width, 1, strides=strides, name=f"stack{stack}_shortcut")(x)
        x = keras.layers.Add(name=f"stack{stack}_add")([x, y])
        x = keras.layers.ReLU(name=f"stack{stack}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
