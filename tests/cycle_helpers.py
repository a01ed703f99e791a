"""The check both cycle-model test files make: expected cycles have gradients and equal the exact ones at hard
choices."""

import numpy as np
import pytest

from udc.compat import tf
from udc.costs import cycle_model as cm
from udc.costs import size_model as sm


def assert_expected_cycles_are_exact_at_hard_choices(tables, layers, codec, logits_of, extra=lambda: 0.0):
    """With random logits, d(E[cycles] + extra()) reaches every variable of `logits_of(layers)`; in hard mode
    E[cycles] equals the exact cycles of the decoded child at each layer's expected bytes (its kernel size's and
    pattern's)."""
    rng = np.random.default_rng(2)
    for layer in layers:
        for v in layer.architecture_variables():
            v.assign(rng.normal(size=v.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        expected = tables.network_expected_cycles(layers, codec) + extra()
    grads = tape.gradient(expected, logits_of(layers))
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads)
    choices = {layer.name: layer.hard_choice() for layer in layers}
    for layer in layers:
        layer.hard.assign(1.0)
    try:
        hard = float(tables.network_expected_cycles(layers, codec))
        at_expected_bytes = {}
        for layer in layers:
            input_width, width = cm.cell_of(layer, choices)
            out = 1 if sm.layer_kind(layer) == "depthwise" else width
            pattern = layer.patterns.index(choices[layer.name]["pattern"])
            kernel_size = layer.kernel_sizes.index(choices[layer.name]["kernel_size"])
            grid = sm.expected_bytes_grid(layer, [input_width], [out], codec)
            at_expected_bytes[layer.name] = float(grid[kernel_size, pattern, 0, 0])
    finally:
        for layer in layers:
            layer.hard.assign(0.0)
    assert hard == pytest.approx(tables.network_cycles(layers, choices, at_expected_bytes), rel=1e-5)
