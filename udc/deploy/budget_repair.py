"""Fitting a fine-tuned model that Vela measures over its budget, without fine-tuning it again.

The search selects at (1 - margin) * budget by the codec on the supernet's weights;
fine-tuning moves the weights and with them the codes, and Vela may split a layer into
streams no per-layer model sees, so an export can come out over the budget (seen on
Fashion-MNIST at 15 KiB: 16,064 B and 15,824 B by Vela against 14,880 B at selection).
Selecting a tighter network and fine-tuning it from the start costs as much as the first
fine-tune. Instead (`prune_to_save`, then `udc.deploy.finetune.recover`):

1. The layer with the most encoded bytes gives them up: a fixed number of bytes is the
   smallest share of the largest layer's weights, so it loses the least of its function.
2. Its smallest-magnitude surviving weights are zeroed, as few as Vela's codec
   (`size_model.kernel_bytes` on the codes the export will store, at the grid step the
   fine-tune kept) says save the excess plus a slack; the mask grows with them, so
   fine-tuning keeps them at zero.
3. A short QAT recovery (`search.repair_steps` batches) and a new export.
"""

import numpy as np

from udc.costs import size_model as sm
from udc.deploy.finetune import kernel_of, step_factor_of, wrapped_layers
from udc.errors import UdcError


def _prune_smallest(kernel, mask, count):
    """(kernel, mask) with the `count` smallest-magnitude surviving weights zeroed too."""
    alive = np.flatnonzero(mask.reshape(-1))
    order = alive[np.argsort(np.abs(kernel.reshape(-1)[alive]), kind="stable")][:count]
    mask = mask.copy().reshape(-1)
    mask[order] = 0.0
    mask = mask.reshape(kernel.shape)
    return kernel * mask, mask


def prune_to_save(qat, masks, arch, need_bytes, target, log=print) -> list[dict]:
    """Zeroes the fewest smallest weights of the largest layers that save `need_bytes` encoded bytes.

    Changes the QAT model's kernels and `masks` in place and the sparsity of every layer it
    prunes in `arch` (a udc.arch.ArchSpec); returns what it did per layer ({layer, pruned,
    saved_bytes, sparsity}).
    """
    wrappers = wrapped_layers(qat)
    bits = arch.bits()
    candidates = []
    for name, mask in masks.items():
        wrapper = wrappers[name]
        kind = sm.plain_layer_kind(wrapper.layer)
        if kind == "depthwise":  # a few weights per channel: no room to prune
            continue
        kernel = kernel_of(wrapper).numpy() * mask
        candidates.append((sm.kernel_bytes(kernel, bits[name], kind, target, step_factor_of(wrapper)), name))
    done = []
    for before, name in sorted(candidates, reverse=True):
        if need_bytes <= 0:
            break
        wrapper, mask = wrappers[name], masks[name]
        variable, kind, factor = kernel_of(wrapper), sm.plain_layer_kind(wrapper.layer), step_factor_of(wrapper)
        kernel = variable.numpy() * mask

        def saved(count):
            pruned = _prune_smallest(kernel, mask, count)[0]
            return before - sm.kernel_bytes(pruned, bits[name], kind, target, factor)

        low, high = 0, int(mask.sum())  # binary search for the fewest weights that save enough
        if saved(high) < need_bytes:
            low = high
        while low < high:
            middle = (low + high) // 2
            low, high = (middle + 1, high) if saved(middle) < need_bytes else (low, middle)
        kernel, masks[name] = _prune_smallest(kernel, mask, low)
        variable.assign(kernel)
        gain = saved(low)
        need_bytes -= gain
        sparsity = float(1.0 - masks[name].mean())
        arch.layer(name).sparsity = sparsity
        done.append({"layer": name, "pruned": low, "saved_bytes": int(gain), "sparsity": sparsity})
        log(f"  budget repair: {name} prunes {low} more weights (sparsity now {sparsity:.1%}), "
            f"saving {gain} B by the codec")
    if need_bytes > 0:
        raise UdcError(f"cannot prune {need_bytes} more encoded bytes out of the fine-tuned model; "
                       "raise --config.search.budget_margin (the search aims lower) or --config.budget_kb")
    return done
