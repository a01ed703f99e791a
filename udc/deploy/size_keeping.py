"""Keeping each layer's encoded bytes through the QAT fine-tune, so the export costs what the search paid.

The search selects a child by the codec's bytes of its stripped weights; the fine-tune then moves
the weights, and with a grid step set by max|w| the codes move with them. Measured on a 64 KiB
Fashion-MNIST child (U55-128, 2 epochs at a peak rate of 8e-3): the 4-bit dense layers came out
3-4 % smaller, a 3-bit 50 %-sparse one 9 % smaller, a 4-bit 75 %-sparse one 4 % larger; the
export 4.2 % under the selection and the budget left unused (on the Pareto run up to 7.8 % at
64 KiB, and 2-bit layers 16 % under). No weight statistic holds the codes still by itself: a
step anchored to each channel's median non-zero |w| made the same child's dense layers 12-15 %
larger (the bulk of the weights grows faster than the largest), and one anchored to the zero
count saturates the levels of wider grids where a mask makes most zeros.

So the fine-tune keeps the bytes themselves: `SizeKeeper` measures each grid layer with the real
codec (`udc.costs.size_model`: the target's own weight encoding, as the search measured) when the
fine-tune starts; then every `EVERY_STEPS` steps (an epoch's first included) and at each epoch's
end it sets the layer's `GridWeightQuantizer.step_factor` (one per layer, on the max-based step of
every channel) to the factor nearest 1 whose codes take at most those bytes and at least 1 % less:
a factor below 1 clips the largest weights to the outer levels, above 1 coarsens the grid. A
bisection over the factor takes about 10 codec calls of 5-15 ms per layer. The factor follows from
the weights of that moment alone, so a fine-tune resumed at an epoch boundary sets the factors an
uninterrupted one sets.
"""

from udc.costs import size_model as sm
from udc.space.quantizers import GridWeightQuantizer

EVERY_STEPS = 100
TOLERANCE = 0.01  # a layer within 1 % under its target keeps its step
# The factor's range and resolution: log2 of the factor in [-1, 1], bisected to 1/2^10.
LOG2_FACTOR_RANGE = 1.0
BISECTION_STEPS = 10


class _GridLayer:
    """One grid-quantized kernel of a QAT model: its variable, quantizer and range variables."""

    def __init__(self, name, wrapper, kernel, quantizer, range_vars, target):
        self.name, self.kernel, self.quantizer, self.range_vars = name, kernel, quantizer, range_vars
        self.kind, self.target = sm.plain_layer_kind(wrapper.layer), target

    def bytes_at(self, factor, kernel=None) -> int:
        kernel = self.kernel.numpy() if kernel is None else kernel
        return sm.kernel_bytes(kernel, self.quantizer.bits, self.kind, self.target, factor)


class SizeKeeper:
    """Holds every grid layer of a QAT model at the encoded bytes it had when the keeper was made."""

    def __init__(self, qat, target):
        self.layers = []
        for wrapper in qat.layers:
            for kernel, quantizer, range_vars in getattr(wrapper, "_weight_vars", []):
                if isinstance(quantizer, GridWeightQuantizer):
                    self.layers.append(_GridLayer(wrapper.layer.name, wrapper, kernel, quantizer, range_vars,
                                                  target))
        for layer in self.layers:
            layer.quantizer.step_factor.assign(1.0)
        self.targets = {layer.name: layer.bytes_at(1.0) for layer in self.layers}

    def keep(self) -> dict:
        """Sets every layer's step factor (`_fitting_factor`) and the quantizers' ranges to match;
        returns {layer name: factor}."""
        factors = {}
        for layer in self.layers:
            factor = self._fitting_factor(layer)
            layer.quantizer.step_factor.assign(factor)
            high = layer.quantizer.grid_range(layer.kernel)
            layer.range_vars["min_var"].assign(-high)
            layer.range_vars["max_var"].assign(high)
            factors[layer.name] = factor
        return factors

    def sizes(self) -> dict:
        """{layer name: encoded bytes} at the current step factors."""
        return {layer.name: layer.bytes_at(float(layer.quantizer.step_factor.numpy())) for layer in self.layers}

    def _fitting_factor(self, layer) -> float:
        """The factor nearest 1 whose bytes lie in [(1 - TOLERANCE) * target, target], by bisection
        on log2(factor) (bytes fall as the step grows, up to the codec's small wiggles); where the
        band cannot be reached, the nearest bound that stays within the target."""
        kernel, target = layer.kernel.numpy(), self.targets[layer.name]
        lower = (1.0 - TOLERANCE) * target

        def fits(log_factor, bound):
            return layer.bytes_at(2.0 ** log_factor, kernel) <= bound

        at_one = layer.bytes_at(1.0, kernel)
        if lower <= at_one <= target:
            return 1.0
        if at_one > target:  # a coarser step: the smallest factor above 1 that fits
            low, high = 0.0, LOG2_FACTOR_RANGE
            if not fits(high, target):
                return float(2.0 ** high)
            for _ in range(BISECTION_STEPS):
                middle = (low + high) / 2
                low, high = (low, middle) if fits(middle, target) else (middle, high)
            return float(2.0 ** high)
        low, high = -LOG2_FACTOR_RANGE, 0.0  # a finer step: the largest factor below 1 that reaches the band
        if fits(low, lower):  # even the finest step stays under the band
            # The finest step when it wins back at least half of the missing bytes (a 3-bit 75 %-sparse
            # layer had shrunk 18 % at its max-based step, 2 % at the finest); else the bytes barely
            # follow the step (a small 8-bit layer) and clipping its weights buys nothing: leave it.
            finest = layer.bytes_at(2.0 ** low, kernel)
            return float(2.0 ** low) if finest - at_one >= (lower - at_one) / 2 else 1.0
        for _ in range(BISECTION_STEPS):
            middle = (low + high) / 2
            low, high = (middle, high) if not fits(middle, lower) else (low, middle)
        return float(2.0 ** low) if fits(low, target) else float(2.0 ** high)
