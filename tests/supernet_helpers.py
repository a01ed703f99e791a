"""A small fmnist supernet trained briefly on digits, and a choice for each of its layers."""

from udc.compat import keras
from udc.space import SearchOptions
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
