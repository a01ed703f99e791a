"""Which sub-network (child) a supernet's forward pass computes: the sandwich rule's children.

A supernet trained only as a soft Gumbel-softmax mixture is not the network that ships:
measured on Fashion-MNIST, the argmax child sat at 11-33 % validation accuracy through
most of a search while the mixture trained at 91 %. One-shot NAS therefore trains hard
children every step (BigNAS, OFA, AttentiveNAS): the **largest** (widest, densest, most
bits), the **smallest** (narrowest, sparsest, fewest bits) and one or more **sampled**
from the current choice distribution, the ones between. The largest learns from the
labels and teaches the others (in-place distillation, `udc.training.distillation`).

Each function sets the child mode of every searchable layer (see `udc.space.layers`)
through variables, so it works inside a traced training step as well as eagerly; the
layers' BatchNorm statistics are those of whatever ran last in training mode, which is
why the search recalibrates them for the child it evaluates.
"""

import numpy as np

from udc.compat import tf
from udc.space.dimensions import DIMENSIONS
from udc.space.layers import decoded_index, gumbel_noise, searchable_layers


def _use(layers, index_of) -> None:
    """Child mode, each dimension of each layer at option `index_of(dimension, layer)` (an int or int tensor)."""
    for layer in layers:
        for dim in DIMENSIONS:
            if dim.stored(layer):  # a choice the layer does not store has its one option
                dim.index(layer).assign(tf.cast(index_of(dim, layer), tf.int32))
        layer.child.assign(1.0)


def use_largest(layers) -> None:
    """Every layer at its widest, largest-kernel, densest (no pattern, no pruning), highest-precision option."""
    _use(layers, lambda dim, layer: dim.largest_index(layer))


def use_smallest(layers) -> None:
    """Every layer at its narrowest, smallest-kernel, sparsest (its N:M pattern, the highest rate), lowest-precision
    option."""
    _use(layers, lambda dim, layer: dim.smallest_index(layer))


def use_sampled(layers) -> None:
    """A child drawn from softmax(logits) of every choice (Gumbel-max)."""
    def sample(dim, layer):
        logits = dim.logits(layer)
        return tf.argmax(logits + gumbel_noise(tf.shape(logits)), output_type=tf.int32)
    _use(layers, sample)


def use_choices(layers, choices: dict) -> None:
    """The child of `choices` ({layer name: {width, kernel_size, pattern, sparsity, bits}}, as in an arch spec)."""
    _use(layers, lambda dim, layer: dim.options(layer).index(dim.chosen(layer, choices[layer.name])))


def release(layers) -> None:
    """Back to the soft mixture (or the decoded choice, for layers in hard mode)."""
    for layer in layers:
        layer.child.assign(0.0)


def with_shared_widths(layers, choices: dict) -> dict:
    """`choices` with each width group's members at their leader's width (`width_from`): what a choice dict of a
    network with residual Adds must hold, whatever changed one member's entry."""
    shared = dict(choices)
    for layer in layers:
        if layer.width_from is not None:
            shared[layer.name] = {**choices[layer.name], "width": choices[layer.width_from.name]["width"]}
    return shared


def choices_of(supernet) -> dict:
    """The decoded choices {layer name: {width, kernel_size, pattern, sparsity, bits}} of every searchable layer."""
    return {layer.name: layer.hard_choice() for layer in searchable_layers(supernet)}


def set_choices(supernet, choices) -> None:
    """Sets every searchable layer's logits so that they decode to `choices` (keeps the order of the rest)."""
    for layer in searchable_layers(supernet):
        c = choices[layer.name]
        for dim in DIMENSIONS:
            if not dim.searchable(layer):
                continue
            logits, index = dim.logits(layer), dim.options(layer).index(dim.chosen(layer, c))
            if int(decoded_index(logits)) != index:
                # Probability e/(1+e) > 1/2 on `index`, which makes it the median.
                v = logits.numpy()
                v[index] = np.logaddexp.reduce(np.delete(v, index)) + 1.0
                logits.assign(v)
