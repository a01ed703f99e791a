"""Child mode: the sandwich rule's children compute exactly the sub-networks that ship."""

import numpy as np
import pytest

from supernet_helpers import CHOICES, trained_supernet
from udc.compat import tf
from udc.deploy.strip import strip
from udc.space import children, searchable_layers
from udc.space.children import set_choices
from udc.space.dimensions import DIMENSIONS


@pytest.fixture(scope="module")
def supernet(digits_splits):
    return trained_supernet(digits_splits)


def test_a_child_computes_what_strip_builds_whatever_the_argmax(supernet, digits_splits):
    layers = searchable_layers(supernet)
    x = digits_splits.test.x[:64]
    children.use_choices(layers, CHOICES)  # the logits' argmax is something else
    try:
        child = supernet(x, training=False).numpy()
    finally:
        children.release(layers)
    saved = [v.numpy() for v in supernet.trainable_variables]
    set_choices(supernet, CHOICES)
    plain, _ = strip(supernet)
    for v, value in zip(supernet.trainable_variables, saved):
        v.assign(value)
    np.testing.assert_allclose(plain(x).numpy(), child, rtol=1e-4, atol=1e-5 * np.abs(child).max())


def test_largest_and_smallest_children(supernet):
    layers = searchable_layers(supernet)
    children.use_largest(layers)
    assert [(l.widths[int(l.width_index.numpy())], l.sparsities[int(l.sparsity_index.numpy())],
             l.bits[int(l.bits_index.numpy())]) for l in layers][:2] == [(16, 0.0, 8), (16, 0.0, 8)]
    children.use_smallest(layers)
    assert [(l.widths[int(l.width_index.numpy())], l.sparsities[int(l.sparsity_index.numpy())],
             l.bits[int(l.bits_index.numpy())]) for l in layers][0] == (8, 0.9, 2)
    children.release(layers)
    assert all(float(l.child.numpy()) == 0.0 for l in layers)


def test_a_sampled_child_is_exact(supernet, digits_splits):
    layers = searchable_layers(supernet)
    x = digits_splits.train.x[:32]
    tf.random.set_seed(1)
    children.use_sampled(layers)
    out = supernet(x, training=False)
    sampled = {l.name: {dim.name: dim.options(l)[int(dim.index(l).numpy())] for dim in DIMENSIONS} for l in layers}
    children.release(layers)
    assert len({tuple(c.values()) for c in sampled.values()}) > 1  # not every layer at one corner
    # The forward pass was that child exactly.
    children.use_choices(layers, sampled)
    np.testing.assert_allclose(supernet(x, training=False).numpy(), out.numpy(), rtol=1e-5, atol=1e-5)
    children.release(layers)
