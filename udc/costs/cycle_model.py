"""Cycle model of a target: the NPU cycles of a supernet's choices, exact and expected.

Measured, not modelled from first principles: the target compiles **probes** of the
network (the supernet's largest child, exported once as an int8 template, then cut to
chosen widths by `udc.costs.narrowing`) and reports each operator's cycles
(`Target.operator_cycles`; Vela's per-layer performance estimate on Ethos-U). A probe
at widths (w_0, ..., w_n) measures one cell (input width, output width) of every layer
at once; `probe_schedule` picks probes until every cell of every layer is measured.
A joint table per layer, not a product of per-width costs: cycles are step functions
of channel counts (array dimensions, micro-blocks).

Cycles also follow the encoded weight bytes, not only the shapes: on Ethos-U55 (Vela 5.2,
fmnist_cnn) a 64x128 3x3 convolution at 14,560 B of weights took 34,298 cycles, at
73,744 B (random 8-bit weights) 76,308, where the weight decoder and the flash fetch
bind; the small Dense layer is fetch-bound at any size. So every cell is measured at
several weight byte levels (`BYTE_LEVELS`: the template's 8-bit weights, the same on a
coarser grid with half of them zero, every code 1), and a layer's cycles at b bytes are the
most of its cycles at the fewest bytes (where shapes alone bind) and the line through the two
densest levels (where the weights bind). The fewest bytes are dense weights of one code, not
zeros: zeros meet the 2:4 sparse pattern, and Ethos-U85-256 ran a 56x56 3x3 convolution with
zero weights in 5,697 cycles where dense weights of any bytes took 11,073 or more, which put
the U85 estimate of dense udc models 8-23 % low. A piecewise-linear interpolation through all
levels put an 8x8 child 8 % above Vela: below the knee the cycles stay at the floor.
Bytes do not say everything: a 6-bit dense 64x16 convolution took 20,320 cycles where the
tables said 18,515, more than the 8-bit level at more bytes (the weight decoder's cost
follows the bit-width too), hence the search's `cycle_margin`; tables per bit-width are
the next step.

Cycles follow the weights' format too: an Ethos-U85 runs a layer whose weights hold the 2:4
pattern in Vela's sparse format (a 64x128 3x3 convolution pair: 502,069 cycles against 601,909
dense, where random 50 % zeros saved none). So a layer that may choose an N:M pattern
(`udc.space.patterns`) has a table per pattern: the probes measured again with every
convolution's and Dense layer's weights cut to the pattern at each byte level
(`narrowing.patterned`). A cell is measured with its probe's neighbours, and a layer's cycles
depend on them: a 2:4 convolution whose weight fetch a slow layer before it hid took 6,101 cycles
in its probe and 9,123 beside a fast one (an MSPS child 8 % over its estimate); Vela's measure of
the export decides, and `udc.workflows.pipeline.ship_reselecting` aims lower after a miss.
A layer that chooses its kernel size (`udc.space.kernel_sizes`) has a table per kernel size too: the
probes measured again with every convolution cut to the centre of that size (`narrowing.narrowed`).
Operators without weights (a global pooling) are added to the cells of
the weight operator before them, whose output width sets theirs.

**Exact** (`CycleTables.network_cycles`): the table at the chosen widths, kernel size and pattern, at
the bytes of the chosen sub-kernels (the size model's codec bytes). **Expected**
(`network_expected_cycles`): the sum over cells, kernel sizes and patterns of p(in) p(out) p(kernel size)
p(pattern) times the cell's cycles at the expected bytes of that cell, kernel size and pattern under the
bits and sparsity distributions
(differentiable in every choice probability). Tables are cached per target next to the
supernet (`load_or_measure`).
"""

import dataclasses
import json

from udc import tflite_file
from udc.compat import tf
from udc.costs import narrowing
from udc.costs import size_model as sm
from udc.errors import UdcError
from udc.space import layers as search_layers
from udc.space.dimensions import KERNEL_SIZE
from udc.space.patterns import DENSE, pattern_of

# 5: a table per kernel size; 4: per weight pattern; 3: the fewest-bytes level is every code 1, no longer zeros
FORMAT_VERSION = 5
# Weight byte levels of the probes: the template's 8-bit weights, a coarse grid with half of them
# zero, every code 1 (see the module doc).
BYTE_LEVELS = ("8 bits", "4 bits, half zero", "every code 1")


def byte_level(template: bytes, level: str, pattern: str = DENSE) -> bytes:
    """The template with its weights rewritten to one of `BYTE_LEVELS`, then cut to `pattern`."""
    data = {"8 bits": lambda: template, "4 bits, half zero": lambda: narrowing.coarsened(template, 4, 0.5),
            "every code 1": lambda: narrowing.filled(template)}[level]()
    return data if pattern == DENSE else narrowing.patterned(data, pattern)


@dataclasses.dataclass
class LayerCycles:
    """The measured cells of one searchable layer: (input width, output width, pattern, kernel size) ->
    ((bytes, cycles), ...) at each byte level, sorted by bytes."""

    cells: dict

    def cycles(self, input_width, width, pattern, kernel_size, weight_bytes) -> float:
        return float(cycles_at(self.cells[(input_width, width, pattern, kernel_size)], weight_bytes))


def cycles_at(points, x):
    """A cell's cycles at x weight bytes from its byte levels `points` ((bytes, cycles), sorted by bytes):
    the most of the fewest cycles (zero weights) and the line through the two densest levels."""
    floor = min(cycles for _, cycles in points)
    return max(floor, points[-1][1] + _slope(points) * (x - points[-1][0]))


def _slope(points) -> float:
    (x1, y1), (x2, y2) = points[-2], points[-1]
    return (y2 - y1) / (x2 - x1) if x2 > x1 else 0.0


@dataclasses.dataclass
class CycleTables:
    """Per searchable layer its `LayerCycles`, for one target and one supernet's option lists."""

    target: str
    layers: dict

    def to_json(self) -> dict:
        return {"version": FORMAT_VERSION, "target": self.target,
                "layers": {name: [[i, o, p, k, [list(point) for point in points]]
                                  for (i, o, p, k), points in sorted(t.cells.items())]
                           for name, t in self.layers.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "CycleTables":
        if data.get("version") != FORMAT_VERSION:
            raise UdcError(f"cycle tables of format {data.get('version')}, this udc reads {FORMAT_VERSION}; "
                           "delete the file to measure them again")
        return cls(data["target"], {
            name: LayerCycles({(int(i), int(o), str(p), int(k)): tuple((float(b), float(c)) for b, c in points)
                               for i, o, p, k, points in cells})
            for name, cells in data["layers"].items()})

    # --- costs ---------------------------------------------------------------------------
    def layer_cycles(self, layer, choices, weight_bytes) -> float:
        """Cycles of `layer` (and the operators without weights after it) under hard `choices`."""
        input_width, width = cell_of(layer, choices)
        choice = choices[layer.name]
        return self.layers[layer.name].cycles(input_width, width, pattern_of(choice), KERNEL_SIZE.chosen(layer, choice),
                                              weight_bytes)

    def network_cycles(self, layers, choices, weight_bytes: dict) -> float:
        """Cycles of the child of `choices`; `weight_bytes` {layer name: encoded bytes} (the codec's)."""
        return sum(self.layer_cycles(layer, choices, weight_bytes[layer.name]) for layer in layers)

    def network_expected_cycles(self, layers, codec_tables):
        """Differentiable E[cycles] under the current choice probabilities, the weight bytes of each cell
        expected by `codec_tables` (a calibrated `size_model.CodecTables`)."""
        return tf.add_n([self._layer_expected_cycles(layer, codec_tables) for layer in layers])

    def _layer_expected_cycles(self, layer, codec_tables):
        p_in, widths_in = sm.input_width_distribution(layer)
        depthwise = sm.layer_kind(layer) == "depthwise"
        probs = layer.choice_probabilities()
        p_out = tf.ones([1]) if depthwise else probs["width"]
        # Per kernel size, pattern and cell (input width i, output width j): the floor, and the line through the
        # densest levels.
        cells = [[[[self.layers[layer.name].cells[(w_in, w_in if depthwise else w_out, pattern, kernel_size)]
                    for w_out in ((None,) if depthwise else layer.widths)] for w_in in widths_in]
                  for pattern in layer.patterns] for kernel_size in layer.kernel_sizes]

        def table(of_points):
            return tf.constant([[[[of_points(points) for points in row] for row in grid] for grid in per_kernel]
                                for per_kernel in cells], tf.float32)

        floor = table(lambda points: min(c for _, c in points))
        x2, y2 = table(lambda points: points[-1][0]), table(lambda points: points[-1][1])
        weight_bytes = sm.expected_bytes_grid(layer, widths_in, (1,) if depthwise else layer.widths, codec_tables)
        cycles = tf.maximum(floor, y2 + table(_slope) * (weight_bytes - x2))
        p_choice = probs["kernel_size"][:, None] * probs["pattern"][None, :]
        return tf.reduce_sum(p_choice[:, :, None, None] * p_in[None, None, :, None] * p_out[None, None, None, :]
                             * cycles)


def cell_of(layer, choices):
    """(input width, output width) of `layer` under hard `choices` (a depthwise layer's are its input's)."""
    depthwise = sm.layer_kind(layer) == "depthwise"
    input_width = sm.input_width_of(layer, choices) or layer.max_input_width
    return (input_width, input_width) if depthwise else (input_width, int(choices[layer.name]["width"]))


def layer_cells(layers) -> dict:
    """{layer name: every (input width, output width) its choices allow} (one width where input and output are
    one width group's)."""
    cells = {}
    for layer in layers:
        _, widths_in = sm.input_width_distribution(layer)
        if sm.layer_kind(layer) == "depthwise" or _input_owner(layer) is _owner(layer):
            cells[layer.name] = [(w, w) for w in widths_in]
        else:
            cells[layer.name] = [(i, o) for i in widths_in for o in layer.widths]
    return cells


def _owner(layer):
    """The layer that holds `layer`'s width choice: its width group's leader, or itself."""
    return layer.width_from or layer


def _input_owner(layer):
    source = search_layers.width_source(layer)
    return None if source is None else _owner(source)


def _input_assignment(layer, input_width) -> dict:
    """{width owner's name: width} that gives `layer` the input width `input_width` (after a Concatenate, the first
    joint choice of its blocks that sums to it)."""
    if layer.input_blocks:
        owners = search_layers.block_owners(layer)
        for widths in search_layers.input_block_widths(layer):
            if sum(widths) == input_width:
                return {owner.name: w for owner, w in zip(owners, widths) if owner is not None}
    owner = _input_owner(layer)
    return {} if owner is None else {owner.name: input_width}


def _as_choices(widths: dict) -> dict:
    return {name: {"width": w} for name, w in widths.items()}


def probe_schedule(layers) -> list[dict]:
    """Width assignments {layer name: width} (of the layers with a width choice) that together put
    every layer in every one of its cells, each chosen to measure the most cells not yet measured."""
    chosen = [layer for layer in layers if layer.has_width_choice]
    missing = {name: set(cells) for name, cells in layer_cells(layers).items()}
    probes = []
    while any(missing.values()):
        widths = _best_probe(layers, chosen, missing)
        left = sum(map(len, missing.values()))
        for layer in layers:
            missing[layer.name].discard(cell_of(layer, _as_choices(widths)))
        if sum(map(len, missing.values())) == left:
            raise UdcError("no width assignment reaches the cells left: "
                           + ", ".join(f"{n} {sorted(c)}" for n, c in missing.items() if c))
        probes.append(widths)
    return probes


def _best_probe(layers, chosen, missing) -> dict:
    """The widths that measure the most missing cells: exactly, by dynamic programming, along a chain (a layer's
    cell depends only on its own width and the width of the layer before it, `width_source`); on a graph (width
    groups of residual Adds, the blocks of a Concatenate) by coordinate ascent from the first missing cell."""
    previous = None
    for layer in chosen:
        if layer.width_from is not None or layer.input_blocks or search_layers.width_source(layer) is not previous:
            return _ascended_probe(layers, chosen, missing)
        previous = layer
    return _chain_probe(layers, chosen, missing)


def _chain_probe(layers, chosen, missing) -> dict:
    followers = {c.name: [l for l in layers if not l.has_width_choice and search_layers.width_source(l) is c]
                 for c in chosen}
    best = {None: (0, {})}  # previous layer's width -> (cells gained, widths so far)
    for layer in chosen:
        options = {}
        for width in layer.widths:
            def gained(path):
                choices = _as_choices(dict(path, **{layer.name: width}))
                return sum(int(cell_of(l, choices) in missing[l.name]) for l in [layer] + followers[layer.name])

            options[width] = max(((score + gained(path), dict(path, **{layer.name: width}))
                                  for score, path in best.values()), key=lambda pick: pick[0])
        best = options
    return max(best.values(), key=lambda pick: pick[0])[1]


def _ascended_probe(layers, chosen, missing) -> dict:
    """Each width choice (a group's leader stands for the group) in turn at the width that measures the most missing
    cells, until none gains; started where the first missing cell is measured, so that every probe gains one."""
    owners = list(dict.fromkeys(_owner(layer) for layer in chosen))

    def widths_of(assignment):
        return {layer.name: assignment[_owner(layer).name] for layer in chosen}

    def gained(assignment):
        choices = _as_choices(widths_of(assignment))
        return sum(int(cell_of(layer, choices) in missing[layer.name]) for layer in layers)

    assignment = {owner.name: owner.widths[-1] for owner in owners}
    layer = next(layer for layer in layers if missing[layer.name])
    input_width, width = min(missing[layer.name])
    assignment.update(_input_assignment(layer, input_width))
    if layer.has_width_choice:
        assignment[_owner(layer).name] = width
    score, improved = gained(assignment), True
    while improved:
        improved = False
        for owner in owners:
            for width in owner.widths:
                trial = {**assignment, owner.name: width}
                if gained(trial) > score:
                    assignment, score, improved = trial, gained(trial), True
    return widths_of(assignment)


def measure(supernet, target, template: bytes, log=print) -> CycleTables:
    """Measures the cycle tables of `supernet`'s layers on `target` from `template`, the int8 .tflite of
    its largest child (`udc.deploy.strip.largest_child_template`), whose weight operators are its searchable layers in
    order: every probe of `probe_schedule` at every byte level, for each weight pattern and kernel size a layer
    may choose (each probe at one kernel size: the layers that do not have it keep their largest)."""
    layers = search_layers.searchable_layers(supernet)
    index_of = dict(zip([layer.name for layer in layers],
                        narrowing.layer_operators(template, [layer.name for layer in layers])))
    patterns = list(dict.fromkeys(p for layer in layers for p in layer.patterns))  # dense first
    choosing = [layer for layer in layers if len(layer.kernel_sizes) > 1]
    # The template's (largest) kernels first; a layer without the size at hand keeps its largest.
    kernel_sizes = sorted({k for layer in choosing for k in layer.kernel_sizes}, reverse=True) or [None]
    levels = {pattern: [byte_level(template, level, pattern) for level in BYTE_LEVELS] for pattern in patterns}
    cells = {layer.name: {} for layer in layers}  # (i, o, pattern, k) -> {byte level: (bytes, cycles)}, first probe's
    schedule = probe_schedule(layers)
    for n, widths in enumerate(schedule):
        choices = _as_choices(widths)
        for kernel_size in kernel_sizes:
            size_of = {layer.name: kernel_size if kernel_size in layer.kernel_sizes else layer.kernel_sizes[-1]
                       for layer in layers}
            cropped = {index_of[layer.name]: size_of[layer.name] for layer in choosing
                       if size_of[layer.name] != layer.kernel_sizes[-1]}
            for pattern in patterns:
                for level, data in enumerate(levels[pattern]):
                    probe = narrowing.narrowed(data, {index_of[name]: w for name, w in widths.items()}, cropped)
                    measured = _per_weight_operator(target, probe, index_of)
                    for layer in layers:
                        if pattern in layer.patterns:
                            cell = cell_of(layer, choices) + (pattern, size_of[layer.name])
                            cells[layer.name].setdefault(cell, {}).setdefault(level, measured[layer.name])
        if (n + 1) % 25 == 0 or n + 1 == len(schedule):
            log(f"cycle tables for {target.name}: {n + 1} of {len(schedule)} width assignments compiled "
                f"at {len(BYTE_LEVELS)} weight byte levels, {len(patterns)} weight pattern(s), "
                f"{len(kernel_sizes)} kernel size(s)")
    return CycleTables(target.name, {name: LayerCycles({cell: tuple(sorted(points.values()))
                                                        for cell, points in c.items()})
                                     for name, c in cells.items()})


def _per_weight_operator(target, data, index_of) -> dict:
    """{layer name: (encoded weight bytes, cycles)} of one compiled probe; the operators without
    weights count with the weight operator before them."""
    operators = target.operator_cycles(data)
    layer_at = {op: name for name, op in index_of.items()}
    # A probe keeps its template's operators, so `index_of` already names its weight operators.
    weights_at = dict(zip(sorted(layer_at), tflite_file.weight_tensors(tflite_file.parse(data))))
    weight_bytes, cycles, owner = {}, {}, None
    for i, measured in enumerate(operators):
        owner = layer_at.get(i, owner)
        if owner is None:
            raise UdcError(f"operator {i} ({measured['op']}) comes before any weight operator; the cycle model "
                           "counts operators without weights with the weight operator before them")
        cycles[owner] = cycles.get(owner, 0) + measured["cycles"]
        if i in layer_at:
            weights = weights_at[i]
            weight_bytes[owner] = target.encoded_weight_bytes(weights.values, tflite_file.OP_KINDS[weights.op])
    return {name: (float(weight_bytes[name]), float(cycles[name])) for name in cycles}


def load_or_measure(path, supernet, target, template_fn, log=print) -> CycleTables:
    """The tables cached at `path` if they were measured for this target and hold every cell of
    `supernet`'s layers, else measured (`template_fn()` gives the template) and written there."""
    from udc.fileio import write_json_atomic

    layers = search_layers.searchable_layers(supernet)
    cells = layer_cells(layers)
    wanted = {layer.name: [cell + (pattern, kernel_size) for cell in cells[layer.name] for pattern in layer.patterns
                           for kernel_size in layer.kernel_sizes] for layer in layers}
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if cached.get("version") == FORMAT_VERSION:  # an older format is measured again, as a missing cell is
        tables = CycleTables.from_json(cached)
        if tables.target == target.name and all(
                name in tables.layers and set(cells) <= set(tables.layers[name].cells) for name, cells in wanted.items()):
            return tables
    log(f"measuring the cycle tables of {target.name} (once per supernet shape and target) ...")
    tables = measure(supernet, target, template_fn(), log=log)
    write_json_atomic(path, tables.to_json())
    return tables
