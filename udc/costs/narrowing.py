"""Probes cut from an int8 .tflite: weight operators narrowed to chosen widths, or weights coarsened.

What the cycle model measures: the cycles of a layer at (input width, output width) come
from compiling the network at those widths, and cutting the channels of a template file
in its flatbuffer takes milliseconds where building and converting a Keras model per
width assignment took seconds. Only shapes, the kept weights and their quantization
parameters change; the operators and their connections stay as they are.
"""

import numpy as np

from udc import tflite_file
from udc.errors import UdcError
from udc.space.patterns import apply_pattern_np

_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# Operators whose output has the channels of their first input.
_CHANNEL_KEEPING_OPS = ("MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RELU", "RELU6", "QUANTIZE", "DEQUANTIZE",
                        "SOFTMAX", "LOGISTIC", "ADD", "MUL")


def weight_operator_indices(data: bytes) -> list[int]:
    """Indices (in the first subgraph) of the operators that hold weights, in order."""
    model = tflite_file.parse(data)
    return [i for i, op in enumerate(model.subgraphs[0].operators) if tflite_file.op_name(model, op) in _WEIGHT_OPS]


def layer_operators(data: bytes, names) -> list[int]:
    """The index of the weight operator of each Keras layer of `names` (the searchable layers of the model the file
    was converted from), in the order of `names`.

    The converter orders operators by its own topological order, which may differ from Keras' order of the layers
    (ResNet-8's second convolution of a stack before its shortcut, or after), so each operator is matched by the
    layer name in its tensors' names (the converter keeps the Keras scope, `model/quant_stack2_b/Conv2D`); the
    operators no name matches (the last one is often named `StatefulPartitionedCall:0`) take the layers left, in
    order."""
    model = tflite_file.parse(data)
    graph = model.subgraphs[0]
    operators = weight_operator_indices(data)
    if len(operators) != len(names):
        raise UdcError(f"the file has {len(operators)} weight operators, the model {len(names)} weight layers; "
                       "convert the model the layers belong to")
    wanted, matched = set(names), {}
    for i in operators:
        op = graph.operators[i]
        scopes = {part.removeprefix("quant_") for t in list(op.outputs) + [op.inputs[1]]
                  for part in _text(graph.tensors[t].name).replace(";", "/").split("/")}
        found = (scopes & wanted) - set(matched.values())
        if len(found) == 1:
            matched[i] = found.pop()
    left = iter(name for name in names if name not in set(matched.values()))
    index_of = {matched.get(i) or next(left): i for i in operators}
    return [index_of[name] for name in names]


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name or "")


def narrowed(data: bytes, widths: dict, kernel_sizes=None) -> bytes:
    """A copy of the .tflite with operator i's output channels cut to widths[i] (operators not in
    `widths` keep theirs; a depthwise operator follows its input), and every input cut to match (after a
    CONCATENATION, the channels each narrowed branch keeps at its offset); a convolution in `kernel_sizes`
    ({operator index: k}) keeps the k x k centre of its kernel (with `same` padding the output keeps its size,
    `udc.space.kernel_sizes`)."""
    kernel_sizes = kernel_sizes or {}
    model = tflite_file.parse(data)
    graph = model.subgraphs[0]
    original = [int(t.shape[-1]) if t.shape is not None and len(t.shape) else 0 for t in graph.tensors]
    kept = {}  # tensor index -> the channels of the original tensor it keeps, in order

    def kept_of(tensor):
        return kept.get(tensor, np.arange(original[tensor]))

    for i, op in enumerate(graph.operators):
        name = tflite_file.op_name(model, op)
        rows = kept_of(op.inputs[0])
        if name in _WEIGHT_OPS:
            weights = graph.tensors[op.inputs[1]]
            if name == "DEPTHWISE_CONV_2D":  # output channel c is input channel c
                out = rows
                keep = (slice(None),) * 3 + (rows,)
            else:
                width = int(widths.get(i, weights.shape[0]))
                if width > weights.shape[0]:
                    raise UdcError(f"operator {i} ({name}) has {weights.shape[0]} output channels, fewer than "
                                   f"{width}; narrow a template at least as wide")
                out = np.arange(width)
                keep = (slice(0, width),) + (slice(None),) * (len(weights.shape) - 2) + (rows,)
            if i in kernel_sizes:  # OHWI and 1HWC: the spatial axes are 1 and 2
                keep = tuple(_centre(keep[axis], weights.shape[axis], kernel_sizes[i]) if axis in (1, 2)
                             else keep[axis] for axis in range(4))
            _cut(model, weights, keep, out)
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                _cut(model, graph.tensors[op.inputs[2]], (out,), out)
        elif name in _CHANNEL_KEEPING_OPS:
            if i in widths:
                raise UdcError(f"operator {i} ({name}) has no weights; only weight operators take a width")
            out = rows
        elif name == "CONCATENATION":
            out = _concatenated_channels(graph, op, i, kept_of, original)
        else:
            raise UdcError(f"cannot narrow a model with a {name} operator (operator {i})")
        for output in op.outputs:
            kept[output] = out
            graph.tensors[output].shape = _with_channels(graph.tensors[output].shape, len(out))
    return tflite_file.serialise(model)


def _concatenated_channels(graph, op, index, kept_of, original) -> np.ndarray:
    """The channels a channel CONCATENATION keeps: each input's kept channels at that input's offset in the
    original output."""
    rank = len(graph.tensors[op.outputs[0]].shape)
    if getattr(op.builtinOptions, "axis", -1) not in (-1, rank - 1):
        raise UdcError(f"cannot narrow a CONCATENATION along axis {op.builtinOptions.axis} (operator {index})")
    offsets = np.cumsum([0] + [original[t] for t in op.inputs])
    return np.concatenate([kept_of(t) + offset for t, offset in zip(op.inputs, offsets)])


def _centre(whole: slice, size: int, kept: int) -> slice:
    """The `kept` middle entries of an axis of `size` (`whole` keeps all of them)."""
    if kept > size or whole != slice(None):
        raise UdcError(f"cannot cut a {size}-wide kernel axis to {kept}")
    offset = (size - kept) // 2
    return slice(offset, offset + kept)


def _with_channels(shape, channels):
    shape = np.array(shape, np.int32)
    shape[-1] = channels
    return shape


def _cut(model, tensor, keep, channels: np.ndarray) -> None:
    """Keeps `keep` of a constant tensor's values and its shape, and the per-channel quantization of `channels`."""
    values = tflite_file.buffer_array(model, tensor)[keep]
    # A buffer of its own: the converter shares one buffer between equal constants (zero biases).
    buffer = tflite_file.schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1
    tensor.shape = np.array(values.shape, np.int32)
    q = tensor.quantization
    if q is not None and q.scale is not None and len(q.scale) > 1:
        q.scale = np.asarray(q.scale)[channels]
        q.zeroPoint = np.asarray(q.zeroPoint)[channels]


def coarsened(data: bytes, bits: int, sparsity: float) -> bytes:
    """A copy of the .tflite whose weights are pruned to `sparsity` (the smallest |code| of each tensor)
    and rounded to the `bits`-bit grid of udc's exporter (codes k * 127 // qmax): the same shapes at
    fewer encoded bytes. sparsity 1 leaves zeros, the least the weights can cost."""
    qmax = 2 ** (bits - 1) - 1

    def codes_of(values):
        values = values.astype(np.int32)
        codes = np.round(values / 127.0 * qmax).astype(np.int32) * 127 // qmax
        pruned = int(np.ceil(sparsity * codes.size))
        if pruned:
            codes.flat[np.argsort(np.abs(values), axis=None, kind="stable")[:pruned]] = 0
        return codes

    return _with_weights(data, codes_of)


def filled(data: bytes, code: int = 1) -> bytes:
    """A copy of the .tflite whose weight codes are all `code`: dense weights at about the fewest encoded
    bytes (one value repeated). Not zeros: zero weights meet the 2:4 sparse pattern, which an Ethos-U85
    runs faster than any dense layer of the same shape."""
    return _with_weights(data, lambda values: np.full(values.shape, code))


def patterned(data: bytes, pattern: str) -> bytes:
    """A copy of the .tflite whose convolution and Dense weights are cut to the N:M `pattern` along their
    input channels (the last axis in TFLite's layout); depthwise weights, which take no pattern, stay."""
    return _with_weights(data, lambda values: apply_pattern_np(values, pattern, axis=-1),
                         ops=("CONV_2D", "FULLY_CONNECTED"))


def _with_weights(data: bytes, codes_of, ops=_WEIGHT_OPS) -> bytes:
    """A copy of the .tflite with the codes of every weight operator of `ops` replaced by `codes_of(its codes)`."""
    model = tflite_file.parse(data)
    for weights in tflite_file.weight_tensors(model):
        if weights.op in ops:
            codes = codes_of(weights.values).astype(np.int8)
            model.buffers[weights.tensor.buffer].data = np.frombuffer(codes.tobytes(), np.uint8)
    return tflite_file.serialise(model)
