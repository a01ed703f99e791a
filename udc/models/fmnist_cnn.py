"""The reference Fashion-MNIST backbone, `fmnist_cnn`.

input -> Conv3x3(32) -> Conv3x3(64, /2) -> Conv3x3(64) -> Conv3x3(128, /2) -> Conv3x3(128)
-> global average pool -> Dense(classes); every conv is `same`-padded, has no bias and
is followed by BatchNorm and ReLU. It is the largest network the default search
considers, so the default widths must stay exactly these.
"""

from udc.compat import keras
from udc.errors import ConfigError

DEFAULT_WIDTHS = (32, 64, 64, 128, 128)
STRIDES = (1, 2, 1, 2, 1)
KERNEL_SIZE = 3
# Keras' 0.99 lags far behind the weights in short runs (tests, quick searches); 0.9
# tracks them and costs nothing on long runs.
BN_MOMENTUM = 0.9


def fmnist_cnn(input_shape, num_classes: int, widths=DEFAULT_WIDTHS, name="fmnist_cnn"):
    if len(widths) != len(STRIDES):
        raise ConfigError(f"fmnist_cnn has {len(STRIDES)} convolutions, got {len(widths)} widths; give "
                          f"{len(STRIDES)} (--config.search.max_widths)")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, (width, stride) in enumerate(zip(widths, STRIDES)):
        x = keras.layers.Conv2D(
            width, KERNEL_SIZE, strides=stride, padding="same", use_bias=False, name=f"conv{i}"
        )(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
