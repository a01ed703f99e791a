"""Controls for the search: does it earn its keep? Children of the same trained supernet chosen
without the search, shipped (`udc.deploy.ship`) with exactly the searched child's recipe at the same
size limit, so a control differs from the searched point only in how its child was chosen.

- **random**: every layer's width, sparsity and bits drawn uniformly from its options, then
  repaired down to the limit or filled up to it by the search's own moves
  (`SupernetSearch.fit_to_limit`); with no search the choice logits are uniform, so the moves
  are ranked by bytes alone.
- **uniform**: every layer the same sparsity and bits and the same share of its widest width
  (rounded down to one of its options); for each (sparsity, bits) pair of the space the largest
  share that fits the limit. Of these children the most accurate on the validation split,
  measured as the search's candidates are (exact child, BatchNorm recalibrated), ships: the
  strongest uniform choice, picked the way the search picks.
"""

import itertools
import time

import numpy as np

from udc.deploy.ship import ship_child
from udc.search.loop import SupernetSearch
from udc.search.selection import format_choices
from udc.space.dimensions import DIMENSIONS
from udc.space.patterns import DENSE
from udc.workdir_lock import workdir_lock

def random_children(search, count: int, seed: int, limit: int) -> list:
    """`count` children drawn uniformly per choice, each fitted to `limit` bytes."""
    rng = np.random.default_rng([seed, 7])  # not the search's candidate stream (seed alone)
    drawn = []
    for _ in range(count):
        choices = {layer.name: {dim.name: dim.options(layer)[int(rng.integers(len(dim.options(layer))))
                                                             if dim.stored(layer) else 0]  # draws as before patterns
                                for dim in DIMENSIONS}
                   for layer in search.layers}
        drawn.append(search.fit_to_limit(choices, limit))
    return drawn


def _width_at(options, share: float):
    """The widest option at most `share` of the widest (the narrowest if none is)."""
    fitting = [w for w in options if w <= share * max(options) + 1e-9]
    return max(fitting) if fitting else min(options)


def uniform_children(search, limit: int) -> list:
    """Per (kernel size, pattern, sparsity, bits), the uniform child with the largest width share that fits
    `limit` (the kernel size and pattern on the layers that take them, the others at their largest kernel and
    dense)."""
    shares = sorted({w / max(layer.widths) for layer in search.layers for w in layer.widths})
    found = []
    for kernel_size, pattern, sparsity, bits in itertools.product(
            search.options.kernel_sizes or (None,), search.options.patterns, search.options.sparsities,
            search.options.bits):
        def child(share):
            return {layer.name: {"width": int(_width_at(layer.widths, share)),
                                 "kernel_size": kernel_size if kernel_size in layer.kernel_sizes
                                 else layer.kernel_sizes[-1],
                                 "pattern": pattern if pattern in layer.patterns else DENSE,
                                 "sparsity": sparsity, "bits": bits} for layer in search.layers}

        low, high = 0, len(shares) - 1  # binary search for the largest share that fits
        if search.sizes.exact(child(shares[low])) > limit:
            continue
        while low < high:
            middle = (low + high + 1) // 2
            if search.sizes.exact(child(shares[middle])) <= limit:
                low = middle
            else:
                high = middle - 1
        if child(shares[low]) not in found:
            found.append(child(shares[low]))
    return found


def control_children(search, kind: str, index: int, seed: int, limit: int):
    """(choices, selection record) of control `kind` number `index` (0-based; uniform has one)."""
    if kind == "random":
        choices = random_children(search, index + 1, seed, limit)[index]
        return choices, {"control": "random", "index": index, "val_accuracy": search.child_accuracy(choices)}
    children = uniform_children(search, limit)
    accuracies = [search.child_accuracy(c) for c in children]
    best = int(np.argmax(accuracies))
    return children[best], {"control": "uniform", "candidates": len(children), "val_accuracy": accuracies[best],
                            "candidate_val_accuracies": [round(a, 4) for a in accuracies]}


def ship_control(config, splits, workdir, kind: str, index: int, target, log=print):
    """Ships control `kind` #`index` of the config's trained supernet (`search.supernet`) from
    WORKDIR (its own folder: one run owns it); returns the report."""
    from udc.workflows.pipeline import finished_report, float_model, float_model_path

    started = time.perf_counter()  # the report's total_seconds include choosing the child
    with workdir_lock(workdir) as workdir:
        finished = finished_report(config, workdir)
        if finished is not None:
            return finished
        search = SupernetSearch(config, splits, workdir, log=log)
        search.use_trained_supernet()
        search.sizes.calibrate()
        choices, selection = control_children(search, kind, index, config.seed, int(search.target_bytes))
        log(f"control {kind} {index + 1}: {format_choices(choices, search.layers)} {search.sizes.exact(choices)} B "
            f"by the codec, validation {selection['val_accuracy']:.2%} on the supernet")
        return ship_child(config, splits, search, choices, workdir, target, selection=selection,
                          teacher=lambda: float_model(config, splits, float_model_path(config, workdir), log=log),
                          started=started, log=log)
