"""The staircase of a target: its cycles of one layer as the layer's channel counts grow one by one.

An NPU computes output channels (and reads input channels) in blocks of its array; a channel
count just past a multiple of the block costs a whole extra pass. `measure_series` compiles one
layer alone (`udc.targets.layer_model`: input -> RELU -> layer at 14x14, dense random int8 weights)
at each channel count and reads Vela's cycles of the layer's operator and its encoded bytes from one
compile (an Ethos-U target's `compile(..., per_layer=True)`); `efficient_widths`
finds the counts that fill the array best, `staircase_period` their block, `alignment_by_kind`
the width alignment of each layer kind. `tools/channel_staircase.py` measures every Ethos-U
configuration this way (benchmarks/hardware/channel_staircase.md), which is where the alignment
table of `udc.targets.ethos_u` comes from.
"""

import math

import numpy as np

from udc.targets.layer_model import layer_model

SERIES = ("conv output", "conv input", "depthwise", "dense output")
MARGIN = 0.03  # an efficient width's cycles per channel are this much below both neighbours'


def layer_codes(series: str, channels: int, fixed: int, rng) -> tuple:
    """(int8 codes in TFLite layout, layer kind) of `series` at `channels`."""
    shape, kind = {"conv output": ((channels, 3, 3, fixed), "conv"), "conv input": ((fixed, 3, 3, channels), "conv"),
                   "depthwise": ((1, 3, 3, channels), "depthwise"),
                   "dense output": ((channels, fixed * 4), "dense")}[series]
    codes = rng.integers(1, 128, size=shape) * rng.choice((-1, 1), size=shape)  # no zeros: dense weights
    return codes.astype(np.int8), kind


def measure_series(target, series: str, channels, fixed: int = 32, seed: int = 0) -> list[dict]:
    """{channels, cycles, encoded_bytes} of one layer of `series` (one of `SERIES`) at each of `channels`,
    the other channel count `fixed`."""
    points = []
    for count in channels:
        codes, kind = layer_codes(series, count, fixed, np.random.default_rng(seed + count))
        compiled = target.compile(layer_model(codes, kind), per_layer=True)
        layer = compiled.operator_cycles[1]  # the file's operators in order: RELU, then the layer
        points.append({"channels": count, "cycles": int(layer["cycles"]),
                       "encoded_bytes": int(compiled.encoded_weight_bytes)})
    return points


def efficient_widths(points, margin: float = MARGIN) -> list[int]:
    """Channel counts whose cycles per channel are at least `margin` below both neighbours': where a
    block of the array is full and the next one not yet started."""
    cycles = {p["channels"]: p["cycles"] for p in points}
    per_channel = {c: cycles[c] / c for c in cycles}
    return [c for c in cycles if c - 1 in cycles and c + 1 in cycles
            and per_channel[c] <= (1 - margin) * min(per_channel[c - 1], per_channel[c + 1])]


def staircase_period(widths: list[int]) -> int:
    """The block of the staircase: the smallest efficient width that divides at least two thirds of
    them (one odd width of a noisy series does not break the pattern); 1 if none does (no staircase)."""
    return min((w for w in widths if sum(v % w == 0 for v in widths) >= 2 / 3 * len(widths)), default=1)


def alignment_by_kind(periods: dict) -> dict:
    """A width is aligned for a layer kind when it fills the blocks of the layer that produces it and of
    a convolution that reads it: conv lcm(conv output, conv input), depthwise lcm(depthwise, conv
    input), dense its outputs' block."""
    return {"conv": math.lcm(periods["conv output"], periods["conv input"]),
            "depthwise": math.lcm(periods["depthwise"], periods["conv input"]),
            "dense": periods["dense output"]}
