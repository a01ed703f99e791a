"""Search-space dimensions: the choices a searchable layer makes, one object each.

A `Dimension` says, for every searchable layer (`udc.space.layers`):

* its **name**: the key of a choice dict `{width, kernel_size, pattern, sparsity, bits}`, of the arch
  spec and of `choice_probabilities()`;
* where the layer keeps its **options**, its choice **logits** and its child **index**
  (attribute names, which are also the variables' names in checkpoints);
* the **order** from smaller to larger network: `smaller` is the step of the option index
  that makes the network smaller (+1 for patterns and sparsity rates, which prune more;
  -1 for widths, kernel sizes and bit-widths); the smallest and largest children, repair and fill follow it;
* whether a layer with a single option still **stores** the choice's variables: the kernel size
  and the N:M pattern, added after supernets and checkpoints were first written, do not, so a
  layer with one kernel size that can only be dense holds the same variables as before and old
  checkpoints restore; a choice dict written before them reads as the layer's largest option
  (`chosen`), which is what the layer was;
* for a **kernel dimension** (kernel size, pattern, sparsity, bits), how a hard choice transforms the kernel
  (`exact`: what strip and the export do) and how the search relaxes it (`relaxed`: the
  options' transforms weighted by the relaxed one-hot `g`).

Width is not a kernel transform: an exact pass cuts the kernel's output axis to the chosen
width and a relaxed one masks the layer's output after its activation (FBNetV2 channel
masks); both live in the layer, which also needs the previous layer's width.

Code that handles choices (children, strip, repair and fill, the arch spec) iterates over
`DIMENSIONS` instead of naming them; a new dimension is one more object here and its options
on the layer.
"""

import dataclasses
import functools

import numpy as np

from udc.compat import tf
from udc.space.kernel_sizes import centre_mask, crop
from udc.space.patterns import pattern_mask
from udc.space.quantizers import grid_quantize


@dataclasses.dataclass(frozen=True)
class Dimension:
    name: str
    options_attribute: str  # the layer's tuple of options, in the order of the logits
    smaller: int  # +1: a higher option index is a smaller network; -1: a lower one
    stored_when_fixed: bool = True  # False: a layer with one option holds no logits or index variable

    def options(self, layer) -> tuple:
        return tuple(getattr(layer, self.options_attribute))

    def logits(self, layer):
        """The choice logits (a constant zero for a choice a layer does not store, see `stored`)."""
        return getattr(layer, f"{self.name}_logits")

    def index(self, layer):
        """The non-trainable option index of child mode (`udc.space.children`)."""
        return getattr(layer, f"{self.name}_index")

    def searchable(self, layer) -> bool:
        """Whether the layer has a choice to make here (a depthwise layer's width is its input's)."""
        return len(self.options(layer)) > 1

    def stored(self, layer) -> bool:
        """Whether the layer holds this choice's logits and index as variables."""
        return self.stored_when_fixed or self.searchable(layer)

    def smallest_index(self, layer) -> int:
        return len(self.options(layer)) - 1 if self.smaller > 0 else 0

    def largest_index(self, layer) -> int:
        return 0 if self.smaller > 0 else len(self.options(layer)) - 1

    def chosen(self, layer, choice: dict):
        """The option of one layer's choice dict; for a dimension added later (not stored when fixed), the
        layer's largest option if the dict names none (a choice written before the dimension existed)."""
        if self.name in choice or self.stored_when_fixed:
            return choice[self.name]
        return self.options(layer)[self.largest_index(layer)]

    def value(self, layer, index):
        """Option `index` as a plain number (what a choice dict and the arch spec hold)."""
        option = self.options(layer)[int(index)]
        if isinstance(option, str):
            return option
        return float(option) if isinstance(option, (float, np.floating)) else int(option)


class Width(Dimension):
    """Output channels. A member of a width group that is not its leader (`width_from`) shares the leader's
    choice and has none of its own to search."""

    def searchable(self, layer) -> bool:
        return super().searchable(layer) and getattr(layer, "width_from", None) is None


class KernelDimension(Dimension):
    """A dimension that transforms the kernel: `exact` for a hard choice, `relaxed` for the search."""

    def exact(self, layer, kernel, index, pruned_counts):
        """`kernel` (the chosen sub-kernel) under option `index` (an int tensor); `pruned_counts`: the
        weights each sparsity rate prunes out of this sub-kernel."""
        raise NotImplementedError

    def relaxed(self, layer, kernel, weights):
        """`kernel` (the full kernel) under the options weighted by `weights` (a relaxed one-hot)."""
        raise NotImplementedError


def pruned_count(rate: float, n: int) -> int:
    """Weights a rate prunes out of n: ceil(rate * n), so a tensor has at least the chosen sparsity."""
    return int(np.ceil(rate * n - 1e-6))


def magnitude_masks(w, rates):
    """One 0/1 mask per sparsity rate, zeroing the ceil(rate*n) smallest |w| (no gradient)."""
    magnitude = tf.stop_gradient(tf.abs(w))
    flat = tf.sort(tf.reshape(magnitude, [-1]))
    n = int(np.prod(w.shape))
    masks = []
    for rate in rates:
        k = pruned_count(rate, n)
        if k == 0:
            masks.append(tf.ones_like(w))
        else:
            masks.append(tf.cast(magnitude > flat[k - 1], w.dtype))
    return masks


class KernelSize(KernelDimension):
    """The spatial kernel size (`udc.space.kernel_sizes`): option k is the k x k centre of the largest
    kernel the layer holds. Applied first: the other dimensions act on the weights it keeps."""

    def exact(self, layer, kernel, index, pruned_counts):
        if not self.searchable(layer):
            return kernel
        return crop(kernel, tf.gather(tf.constant(self.options(layer), tf.int32), index))

    def relaxed(self, layer, kernel, weights):
        if not self.searchable(layer):
            return kernel
        largest, rank = int(kernel.shape[0]), len(kernel.shape)
        masks = tf.constant(np.stack([centre_mask(largest, k, rank) for k in self.options(layer)]))
        return kernel * tf.tensordot(weights, masks, axes=1)


class Pattern(KernelDimension):
    """N:M weight patterns (`udc.space.patterns`): "dense" or e.g. "2:4" along the input channels. Applied
    first, so that sparsity rates prune further among the weights the pattern keeps and the grid rounds
    them; both only add zeros, so the pattern holds in the exported weights."""

    def exact(self, layer, kernel, index, pruned_counts):
        if not self.searchable(layer):  # dense only: the kernel as it is, no op added to the pass
            return kernel
        branches = [lambda p=p: kernel * pattern_mask(kernel, p, layer.in_axis) for p in self.options(layer)]
        return tf.switch_case(tf.cast(index, tf.int32), branches)

    def relaxed(self, layer, kernel, weights):
        if not self.searchable(layer):
            return kernel
        return tf.add_n([weights[j] * (kernel * pattern_mask(kernel, p, layer.in_axis))
                         for j, p in enumerate(self.options(layer))])


class Sparsity(KernelDimension):
    """Unstructured magnitude sparsity: rate r zeroes the ceil(r * n) smallest |w|. Relaxed over the
    whole kernel, exact over the chosen sub-kernel (the rule of the export and of the size model).
    Gradients reach the surviving weights; the threshold is not differentiated."""

    def exact(self, layer, kernel, index, pruned_counts):
        pruned = tf.gather(pruned_counts, index)

        def prune():
            magnitude = tf.stop_gradient(tf.abs(kernel))
            threshold = tf.gather(tf.sort(tf.reshape(magnitude, [-1])), pruned - 1)
            return kernel * tf.cast(magnitude > threshold, kernel.dtype)

        return tf.cond(pruned > 0, prune, lambda: kernel)

    def relaxed(self, layer, kernel, weights):
        masks = magnitude_masks(kernel, self.options(layer))
        return tf.add_n([weights[j] * (kernel * m) for j, m in enumerate(masks)])


class Bits(KernelDimension):
    """The weight bit-width: straight-through rounding to the symmetric b-bit grid
    (`udc.space.quantizers`), per output channel for convolutions, per tensor for Dense."""

    def exact(self, layer, kernel, index, pruned_counts):
        grids = [functools.partial(grid_quantize, kernel, b, layer.channel_axis) for b in self.options(layer)]
        return tf.switch_case(tf.cast(index, tf.int32), grids)

    def relaxed(self, layer, kernel, weights):
        return tf.add_n([weights[k] * grid_quantize(kernel, b, layer.channel_axis)
                         for k, b in enumerate(self.options(layer))])


WIDTH = Width("width", "widths", smaller=-1)
KERNEL_SIZE = KernelSize("kernel_size", "kernel_sizes", smaller=-1, stored_when_fixed=False)
PATTERN = Pattern("pattern", "patterns", smaller=+1, stored_when_fixed=False)
SPARSITY = Sparsity("sparsity", "sparsities", smaller=+1)
BITS = Bits("bits", "bits", smaller=-1)
# Every dimension, in the order of a choice dict and the arch spec.
DIMENSIONS = (WIDTH, KERNEL_SIZE, PATTERN, SPARSITY, BITS)
# The kernel dimensions in the order they transform a kernel: the centre, the pattern, prune further, round the
# survivors.
KERNEL_DIMENSIONS = (KERNEL_SIZE, PATTERN, SPARSITY, BITS)
