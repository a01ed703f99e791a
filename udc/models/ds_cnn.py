"""DS-CNN, the keyword-spotting network of MLPerf Tiny and Arm's ML-zoo (DS-CNN-S at the default widths).

input (49 MFCC frames x 10 coefficients x 1) -> Conv 10x4 (64, /2) -> four depthwise-separable blocks
(Depthwise 3x3 -> Conv 1x1 (64)) -> dropout -> global average pool -> Dense(classes). Every convolution is
`same`-padded, has no bias and is followed by BatchNorm and ReLU. ML-zoo's DS-CNN-S is a 54,464-byte int8 .tflite
at 93.4 % on Speech Commands' 12-class task; the reference pools with a 25x5 AveragePooling2D and a Flatten, which
is the global average pool written for one input size.
"""

from udc.compat import keras
from udc.errors import ConfigError

DEFAULT_WIDTHS = (64, 64, 64, 64, 64)  # the first convolution's, then each block's pointwise convolution's
FIRST_KERNEL = (10, 4)
FIRST_STRIDES = (2, 2)
BN_MOMENTUM = 0.9  # as fmnist_cnn: Keras' 0.99 lags in short runs
DROPOUT = 0.4


def ds_cnn(input_shape, num_classes: int, widths=DEFAULT_WIDTHS, name="ds_cnn"):
    if len(widths) != len(DEFAULT_WIDTHS):
        raise ConfigError(f"ds_cnn has {len(DEFAULT_WIDTHS)} convolutions with a width, got {len(widths)} widths; "
                          f"give {len(DEFAULT_WIDTHS)} (--config.search.max_widths)")
    inputs = keras.Input(shape=input_shape, name="features")
    x = keras.layers.Conv2D(widths[0], FIRST_KERNEL, strides=FIRST_STRIDES, padding="same", use_bias=False,
                            name="conv0")(inputs)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn0")(x)
    x = keras.layers.ReLU(name="relu0")(x)
    for i, width in enumerate(widths[1:], start=1):
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dw{i}_bn")(x)
        x = keras.layers.ReLU(name=f"dw{i}_relu")(x)
        x = keras.layers.Conv2D(width, 1, padding="same", use_bias=False, name=f"pw{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"pw{i}_bn")(x)
        x = keras.layers.ReLU(name=f"pw{i}_relu")(x)
    x = keras.layers.Dropout(DROPOUT, name="dropout")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
