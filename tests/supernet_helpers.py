"""A small fmnist supernet trained briefly on digits, a choice for each of its layers, and a supernet whose branches
a Concatenate joins."""

from udc.compat import keras
from udc.space import SearchOptions
from udc.space.derive import derive_supernet
from udc.space.layers import traced_pass
from udc.space.supernet import fmnist_supernet

CHOICES = {
    "conv0": {"width": 8, "kernel_size": 3, "pattern": "dense", "sparsity": 0.5, "bits": 3},
    "conv1": {"width": 16, "kernel_size": 3, "pattern": "dense", "sparsity": 0.9, "bits": 4},
    "conv2": {"width": 24, "kernel_size": 3, "pattern": "dense", "sparsity": 0.0, "bits": 8},
    "conv3": {"width": 8, "kernel_size": 3, "pattern": "dense", "sparsity": 0.75, "bits": 2},
    "conv4": {"width": 16, "kernel_size": 3, "pattern": "dense", "sparsity": 0.25, "bits": 5},
    "logits": {"width": 10, "kernel_size": 1, "pattern": "dense", "sparsity": 0.5, "bits": 6},
}


def trained_supernet(splits):
    """Non-trivial BatchNorm statistics and peaky weights, after one short epoch."""
    keras.utils.set_random_seed(0)
    model = fmnist_supernet(splits.input_shape, 10, SearchOptions(), widths=(16, 16, 32, 32, 32))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with traced_pass("soft"):  # fit runs the soft mixture only: no need to trace each layer's exact branch too
        model.fit(splits.train.x[:640], splits.train.y[:640], batch_size=64, epochs=1, verbose=0)
    return model


def joined_branches(join_to_add=False, channels=(16, 16)):
    """A stem, two branches of `channels` (a 1x1 one and a depthwise-separable one) joined by a Concatenate, then a
    1x1 convolution (or, `join_to_add`, an Add of the joined tensor and a convolution of the stem as wide)."""
    inputs = keras.Input((8, 8, 3))
    stem = keras.layers.ReLU(name="stem_relu")(keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs))
    a = keras.layers.Conv2D(channels[0], 1, activation="relu", name="branch_a")(stem)
    b = keras.layers.Conv2D(channels[1], 1, activation="relu", name="branch_b")(stem)
    b = keras.layers.DepthwiseConv2D(3, padding="same", name="branch_b_dw")(b)
    x = keras.layers.Concatenate(name="cat")([a, b])
    if join_to_add:
        x = keras.layers.Add(name="add")([x, keras.layers.Conv2D(sum(channels), 1, name="wide")(stem)])
    x = keras.layers.Conv2D(16, 1, activation="relu", name="after")(keras.layers.MaxPooling2D(name="max")(x))
    x = keras.layers.Dense(3, name="out")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    keras.utils.set_random_seed(0)
    options = SearchOptions(alignment=8, kernel_sizes=(1, 3), patterns=("dense", "2:4"), sparsities=(0.0, 0.5))
    return derive_supernet(keras.Model(inputs, x), options)
