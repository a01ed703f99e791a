"""Per weight tensor of a .tflite: what is stored and what Vela's codec makes of it."""

import dataclasses
import math

import numpy as np

from udc import tflite_file
from udc.costs.size_model import codes_bytes
from udc.targets.codec import encoded_bytes


@dataclasses.dataclass(frozen=True)
class TensorStats:
    op: str
    name: str
    shape: tuple
    dtype: str
    distinct_values: int
    zero_fraction: float
    effective_bits: int  # bits needed to index the distinct values
    stored_bytes: int
    encoded_bytes: int  # Ethos-U55/U65 weight codec, stored (OHWI) order
    vela_order_bytes: int | None = None  # the same codec in Vela's brick order for a target


def tensor_stats(w: tflite_file.WeightTensor, target=None) -> TensorStats:
    """Stats of one int8 weight tensor (inspect_model checks the model); `target` (an Ethos-U55/U65
    udc.targets.Target) adds the codec's bytes in its brick order."""
    values = w.values
    vela_order = None
    if target is not None and w.op in tflite_file.OP_KINDS:
        vela_order = codes_bytes(values, tflite_file.OP_KINDS[w.op], target)
    distinct = int(np.unique(values).size)
    return TensorStats(
        op=w.op,
        name=w.name,
        shape=tuple(int(d) for d in values.shape),
        dtype=w.dtype,
        distinct_values=distinct,
        zero_fraction=float(np.mean(values == 0)),
        effective_bits=max(1, math.ceil(math.log2(distinct))) if distinct > 1 else 0,
        stored_bytes=int(values.nbytes),
        encoded_bytes=encoded_bytes(values),
        vela_order_bytes=vela_order,
    )


def inspect_model(data: bytes, target=None, source="the model") -> list[TensorStats]:
    """Stats of each weight tensor of an int8 .tflite (anything else is refused: the codec encodes int8)."""
    return [tensor_stats(w, target) for w in tflite_file.weight_tensors(tflite_file.check_int8(data, source))]


def format_table(stats: list[TensorStats]) -> str:
    bricks = any(s.vela_order_bytes is not None for s in stats)
    header = (f"{'op':<18} {'shape':<18} {'dtype':<6} {'distinct':>8} {'zeros':>7} {'bits':>4} {'stored B':>9} "
              f"{'encoded B':>9}{'bricks B' if bricks else '':>{10 if bricks else 0}}  name")
    lines = [header, "-" * len(header)]
    for s in stats:
        brick_column = f"{s.vela_order_bytes if s.vela_order_bytes is not None else '-':>10}" if bricks else ""
        lines.append(
            f"{s.op:<18} {'x'.join(map(str, s.shape)):<18} {s.dtype:<6} {s.distinct_values:>8} "
            f"{s.zero_fraction:>7.1%} {s.effective_bits:>4} {s.stored_bytes:>9} {s.encoded_bytes:>9}"
            f"{brick_column}  {s.name}"
        )
    stored = sum(s.stored_bytes for s in stats)
    encoded = sum(s.encoded_bytes for s in stats)
    weights = sum(int(np.prod(s.shape)) for s in stats)
    zeros = sum(s.zero_fraction * int(np.prod(s.shape)) for s in stats)
    lines.append("-" * len(header))
    lines.append(
        f"total: {len(stats)} weight tensors, {weights} weights, {zeros / max(weights, 1):.1%} zeros, "
        f"{stored} stored bytes, {encoded} codec bytes ({encoded / max(stored, 1):.1%} of stored)"
        + (f", {sum(s.vela_order_bytes or 0 for s in stats)} in Vela's brick order" if bricks else "")
    )
    return "\n".join(lines)
