"""Selection under limits: the exact and expected bytes and cycles of a supernet's choices, and
the repair and fill moves that fit a choice to its limits (see `udc.search.loop`)."""

import dataclasses

from udc.compat import keras, tf
from udc.costs import size_model as sm
from udc.errors import UdcError
from udc.space import layers as search_layers
from udc.space.children import with_shared_widths
from udc.space.dimensions import DIMENSIONS, KERNEL_DIMENSIONS, KERNEL_SIZE
from udc.space.patterns import DENSE, pattern_of

class Sizes:
    """Exact (codec) and expected (size model) bytes of a supernet's choices, pooling weights included."""

    def __init__(self, supernet, target):
        self.supernet, self.target = supernet, target
        self.layers = search_layers.searchable_layers(supernet)
        self.tables = sm.CodecTables(self.layers, target)  # the differentiable estimate's
        self._cache = {}
        pool = [l for l in supernet.layers if isinstance(l, keras.layers.GlobalAveragePooling2D)]
        self.pool_source = self.pool_table = None
        if pool:
            _, h, w, _ = pool[0].input_shape
            self.pool_source = search_layers.width_source(self.layers[-1]) if self.layers else None
            widths = self.pool_source.widths if self.pool_source else (int(pool[0].input_shape[-1]),)
            self.pool_table = {int(c): sm.global_pool_bytes(h, w, int(c), target) for c in widths}

    def calibrate(self):
        self.tables.calibrate()
        self._cache.clear()

    def pool_bytes(self, choices) -> int:
        if self.pool_table is None:
            return 0
        if self.pool_source is None:
            return next(iter(self.pool_table.values()))
        return self.pool_table[choices[self.pool_source.name]["width"]]

    def expected_pool_bytes(self):
        if self.pool_table is None:
            return tf.constant(0.0)
        if self.pool_source is None:
            return tf.constant(float(next(iter(self.pool_table.values()))))
        probs = self.pool_source.choice_probabilities()["width"]
        table = tf.constant([float(self.pool_table[int(w)]) for w in self.pool_source.widths])
        return tf.reduce_sum(probs * table)

    def expected(self):
        """Differentiable E[bytes] under the current choice probabilities."""
        return sm.network_expected_bytes(self.layers, self.tables) + self.expected_pool_bytes()

    def layer_bytes(self, layer, choices) -> int:
        c = choices[layer.name]
        depthwise = sm.layer_kind(layer) == "depthwise"
        width = None if depthwise else c["width"]
        input_width, input_rows = sm.input_width_of(layer, choices), sm.input_rows_of(layer, choices)
        kernel_size = KERNEL_SIZE.chosen(layer, c)
        rows = None if input_rows is None else tuple(input_rows)  # blocks of a Concatenate: one sum, several layouts
        key = (layer.name, width, input_width, rows, kernel_size, pattern_of(c), c["bits"], c["sparsity"])
        if key not in self._cache:
            self._cache[key] = sm.layer_codec_bytes(layer, c["bits"], c["sparsity"], width, input_width,
                                                    self.target, pattern=pattern_of(c), kernel_size=kernel_size,
                                                    input_rows=input_rows)
        return self._cache[key]

    def exact(self, choices) -> int:
        return sum(self.layer_bytes(layer, choices) for layer in self.layers) + self.pool_bytes(choices)

    def smallest_choices(self) -> dict:
        return {layer.name: {dim.name: dim.options(layer)[dim.smallest_index(layer)] for dim in DIMENSIONS}
                for layer in self.layers}


class Cycles:
    """Exact and expected NPU cycles of a supernet's choices (`udc.costs.cycle_model`), at the codec
    bytes `sizes` measures."""

    def __init__(self, sizes: Sizes, tables):
        self.sizes, self.tables, self.layers = sizes, tables, sizes.layers

    def exact(self, choices) -> int:
        weight_bytes = {layer.name: self.sizes.layer_bytes(layer, choices) for layer in self.layers}
        return int(round(self.tables.network_cycles(self.layers, choices, weight_bytes)))

    def expected(self):
        """Differentiable E[cycles] under the current choice probabilities."""
        return self.tables.network_expected_cycles(self.layers, self.sizes.tables)


@dataclasses.dataclass(frozen=True)
class Limit:
    """What a selected network must fit: `cost.exact(choices)` at most `limit` (`unit` names it in logs)."""

    cost: object
    limit: float
    unit: str


# The order moves are tried in; ties go to the first. Kernel dimensions before width: the order
# selection has always used, so the same logits give the same children.
_MOVE_ORDER = KERNEL_DIMENSIONS + tuple(dim for dim in DIMENSIONS if dim not in KERNEL_DIMENSIONS)


def _steps(limits, choices, log_probs, shrink: bool):
    """Every one-step move of one layer's choice (smaller if `shrink`, else larger), in `_MOVE_ORDER`:
    (log-probability lost, the moved choices, their exact costs per limit, what moved)."""
    for layer in limits[0].cost.layers:
        for dim in _MOVE_ORDER:
            if not dim.searchable(layer):
                continue
            options = dim.options(layer)
            i = options.index(choices[layer.name][dim.name])
            j = i + (dim.smaller if shrink else -dim.smaller)
            if not 0 <= j < len(options):
                continue
            trial = with_shared_widths(limits[0].cost.layers,
                                       {**choices, layer.name: {**choices[layer.name], dim.name: options[j]}})
            lost = max(float(log_probs[layer.name, dim.name][i] - log_probs[layer.name, dim.name][j]), 1e-6)
            what = f"{layer.name}.{dim.name} {options[i]} -> {options[j]}"
            yield lost, trial, [l.cost.exact(trial) for l in limits], what


def repair(limits: list, choices: dict, log=print) -> dict:
    """Smallest-regret moves until every exact cost fits its limit (see module doc); returns new choices.

    With several limits a move's saving is the sum, over the costs still over their limits, of
    what it saves as a share of each limit."""
    choices = {k: dict(v) for k, v in choices.items()}
    log_probs = _log_probs(limits[0].cost.layers)
    totals = [l.cost.exact(choices) for l in limits]
    while any(t > l.limit for t, l in zip(totals, limits)):
        best = None
        for regret, trial, trial_totals, what in _steps(limits, choices, log_probs, shrink=True):
            saved = sum((t - n) / l.limit for t, n, l in zip(totals, trial_totals, limits) if t > l.limit)
            if saved > 0 and (best is None or regret / saved < best[0]):
                best = (regret / saved, trial, what, trial_totals)
        if best is None:
            over = "; ".join(f"{t:,} {l.unit} > {l.limit:,.0f} {l.unit}" for t, l in zip(totals, limits) if t > l.limit)
            raise UdcError(f"cannot fit the budget: the smallest choices still take {over}; "
                           "raise --config.budget_kb or --config.budget_cycles, or add smaller options")
        _, choices, what, after = best
        log(f"  repair: {what} saves " + ", ".join(f"{t - n:,} {l.unit}" for t, n, l in zip(totals, after, limits))
            + " -> " + ", ".join(f"{n:,} {l.unit} (limit {l.limit:,.0f})" for n, l in zip(after, limits)))
        totals = after
    return choices


def fill(limits: list, choices: dict, log=print) -> dict:
    """The mirror of `repair` for a choice well under its limits: repeatedly take the single move
    (one layer one step wider, denser or more bits) that loses the least log-probability per
    share of the limits added, as long as every exact cost stays within its limit. The expected
    size the search steers is E[c_in] E[c_out]-based, so the decoded choice can land far below
    the budget (measured on Fashion-MNIST: 3.6 kB for a 12 KiB budget); the bytes left are
    accuracy left."""
    choices = {k: dict(v) for k, v in choices.items()}
    log_probs = _log_probs(limits[0].cost.layers)
    totals = [l.cost.exact(choices) for l in limits]
    moves = 0
    while True:
        best = None
        for regret, trial, trial_totals, _ in _steps(limits, choices, log_probs, shrink=False):
            if any(n > l.limit for n, l in zip(trial_totals, limits)):
                continue
            added = sum(max(n - t, 1) / l.limit for t, n, l in zip(totals, trial_totals, limits))
            if best is None or regret / added < best[0]:
                best = (regret / added, trial, trial_totals)
        if best is None:
            break
        _, choices, totals = best
        moves += 1
    if moves:
        log(f"  fill: {moves} moves up to " + ", ".join(f"{t:,} {l.unit} (limit {l.limit:,.0f})"
                                                        for t, l in zip(totals, limits))
            + f": {format_choices(choices, limits[0].cost.layers)}")
    return choices


def _log_probs(layers):
    return {(layer.name, dim.name): tf.nn.log_softmax(dim.logits(layer)).numpy()
            for layer in layers for dim in DIMENSIONS}


def format_costs(limits, choices) -> str:
    return ", ".join(f"{l.cost.exact(choices):,} {l.unit}" for l in limits)


def format_choices(choices: dict, layers) -> str:
    """Each layer's width/sparsity/bits, its kernel before them (a Dense layer's is 1x1, as Vela runs it; a held
    non-square one as it is, e.g. 10x4) and its N:M pattern with the sparsity where it has one (e.g.
    `conv1 48/5x5/2:4+50%/6b`); a depthwise layer's width is its input's; no kernel for a choice written before
    kernel sizes. `layers`: the searchable layers the choices are of."""
    by_name = {layer.name: layer for layer in layers}

    def width(name, c):
        layer = by_name.get(name)
        if layer is None or layer.has_width_choice:
            return c["width"]
        return sm.input_width_of(layer, choices) or layer.max_width  # a depthwise layer's width is its input's

    def kernel(name, c):
        size = c.get("kernel_size")
        if not size:
            return ""
        shape = by_name[name].kernel_shape(size) if hasattr(by_name.get(name), "kernel_shape") else (size, size)
        return f"{shape[0]}x{shape[1]}/"

    return " ".join(f"{name} {width(name, c)}/{kernel(name, c)}"
                    f"{'' if pattern_of(c) == DENSE else pattern_of(c) + '+'}{c['sparsity']:.0%}/{c['bits']}b"
                    for name, c in choices.items())
