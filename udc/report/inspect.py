"""Per weight tensor of a .tflite: what is stored, what Vela's codec makes of it, and whether it meets
the Ethos-U85's 2:4 sparse format (udc.targets.ethos_u.two_four_problems; with a target that reports
it, the format Vela chose)."""

import dataclasses
import math

import numpy as np

from udc import tflite_file
from udc.costs.size_model import codes_bytes
from udc.targets.codec import encoded_bytes
from udc.targets.ethos_u import two_four_problems


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
    two_four: str = ""  # "yes" if the codes meet the 2:4 sparse format's rules, else why not
    vela_format: str | None = None  # the weight format Vela chose for a target that reports it
    cycles: int | None = None  # the target's cycles of this layer's operator


def tensor_stats(w: tflite_file.WeightTensor, target=None, vela_format=None, cycles=None) -> TensorStats:
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
        two_four="; ".join(two_four_problems(values, tflite_file.OP_KINDS.get(w.op, "conv"))) or "yes",
        vela_format=vela_format,
        cycles=cycles,
    )


def inspect_model(data: bytes, target=None, source="the model") -> list[TensorStats]:
    """Stats of each weight tensor of an int8 .tflite (anything else is refused: the codec encodes int8);
    with a target, each layer's cycles on it, and with one that reports weight formats (Ethos-U) the
    format Vela chose (so a 2:4 layer shows its format and its cycles side by side)."""
    model = tflite_file.check_int8(data, source)
    formats = cycles = None
    if hasattr(target, "weight_formats"):  # Ethos-U: one compile gives both
        compiled = target.compile(data, per_layer=True, weight_formats=True)
        formats, cycles = compiled.weight_formats, [op["cycles"] for op in compiled.operator_cycles]
    elif target is not None:
        cycles = [op["cycles"] for op in target.operator_cycles(data)]
    return [tensor_stats(w, target, formats[w.op_index] if formats else None,
                         cycles[w.op_index] if cycles else None) for w in tflite_file.weight_tensors(model)]


def _format_name(vela_format: str | None) -> str:
    """Vela's weight format, short: '2:4' for its sparse format, 'dense' otherwise, '-' without one."""
    if vela_format is None:
        return "-"
    return "2:4" if "Sparse2_4" in vela_format else "dense"


def format_table(stats: list[TensorStats]) -> str:
    bricks = any(s.vela_order_bytes is not None for s in stats)
    formats = any(s.vela_format is not None for s in stats)
    cycled = any(s.cycles is not None for s in stats)
    header = (f"{'op':<18} {'shape':<18} {'dtype':<6} {'distinct':>8} {'zeros':>7} {'bits':>4} {'stored B':>9} "
              f"{'encoded B':>9}" + (f"{'bricks B':>10}" if bricks else "") + "  2:4"
              + ("  Vela  " if formats else "") + (f"{'cycles':>9}" if cycled else "") + "  name")
    lines = [header, "-" * len(header)]
    for s in stats:
        row = (f"{s.op:<18} {'x'.join(map(str, s.shape)):<18} {s.dtype:<6} {s.distinct_values:>8} "
               f"{s.zero_fraction:>7.1%} {s.effective_bits:>4} {s.stored_bytes:>9} {s.encoded_bytes:>9}")
        if bricks:
            row += f"{'-' if s.vela_order_bytes is None else s.vela_order_bytes:>10}"
        row += f"  {'yes' if s.two_four == 'yes' else 'no':<3}"
        if formats:
            row += f"  {_format_name(s.vela_format):<6}"
        if cycled:
            row += f"{'-' if s.cycles is None else s.cycles:>9}"
        row += f"  {s.name}"
        if s.two_four != "yes" and s.zero_fraction >= 0.5:
            row += f"  (not 2:4: {s.two_four})"
        lines.append(row)
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
