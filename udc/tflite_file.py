"""Reading and rewriting TFLite flatbuffers through the TFLite schema (object API).

Uses the schema module generated for TFLite and the `flatbuffers` package, so a
rewritten file (metadata added, quantization parameters repaired) is a plain TFLite
file that the converter, Vela and TFLite Micro read as usual.
"""

import dataclasses
import json
from pathlib import Path

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema  # noqa: F401 (re-exported)

from udc.errors import NotATfliteFileError

FILE_IDENTIFIER = b"TFL3"
METADATA_KEY = "udc"

# Builtin operators whose second input is a weight tensor stored in a buffer.
WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_NUMPY_TYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32,
                "INT64": np.int64, "FLOAT32": np.float32, "FLOAT16": np.float16}


def check_tflite_bytes(data: bytes, source="input") -> None:
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise NotATfliteFileError(
            f"{source} is not a TFLite flatbuffer (no 'TFL3' identifier); "
            "give a .tflite file written by the TFLite converter or udc-export"
        )


def read_bytes(path) -> bytes:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NotATfliteFileError(f"cannot read {path} ({e.strerror}); check the path") from None
    check_tflite_bytes(data, str(path))
    return data


def parse(data: bytes) -> schema.ModelT:
    check_tflite_bytes(data)
    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAs(bytearray(data), 0))
    except Exception as e:  # a corrupt table raises anything from struct.error to IndexError
        raise NotATfliteFileError(f"the TFLite flatbuffer is corrupt ({e}); re-export the model") from None


def serialise(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _name(raw) -> str:
    return raw.decode() if isinstance(raw, bytes) else (raw or "")


def op_name(model: schema.ModelT, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    name = _OP_NAMES.get(builtin, str(builtin))
    return _name(code.customCode) if name == "CUSTOM" else name


def operator_names(model: schema.ModelT) -> list[str]:
    return [op_name(model, op) for sg in model.subgraphs for op in sg.operators]


def buffer_array(model: schema.ModelT, tensor) -> np.ndarray | None:
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    dtype = _NUMPY_TYPES[_TYPE_NAMES[tensor.type]]
    return np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), dtype=dtype).reshape(tensor.shape)


@dataclasses.dataclass
class WeightTensor:
    """The weights of one conv/dense operator, as stored in the file."""

    op: str
    name: str
    dtype: str
    values: np.ndarray  # stored integers (OHWI for convs, 1HWC for depthwise)
    scales: np.ndarray
    tensor: object  # schema TensorT, for rewriting
    bias_tensor: object | None
    input_tensor: object


def weight_tensors(model: schema.ModelT) -> list[WeightTensor]:
    found = []
    for sg in model.subgraphs:
        for op in sg.operators:
            name = op_name(model, op)
            if name not in WEIGHT_OPS:
                continue
            # TRANSPOSE_CONV's inputs are (output_shape, weights, input, bias).
            w_pos, in_pos = (1, 2) if name == "TRANSPOSE_CONV" else (1, 0)
            bias_pos = 3 if name == "TRANSPOSE_CONV" else 2
            weights = sg.tensors[op.inputs[w_pos]]
            values = buffer_array(model, weights)
            if values is None:
                continue
            bias = None
            if len(op.inputs) > bias_pos and op.inputs[bias_pos] >= 0:
                bias = sg.tensors[op.inputs[bias_pos]]
            q = weights.quantization
            scales = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float64)
            found.append(WeightTensor(
                op=name, name=_name(weights.name), dtype=_TYPE_NAMES[weights.type],
                values=values, scales=scales, tensor=weights, bias_tensor=bias,
                input_tensor=sg.tensors[op.inputs[in_pos]],
            ))
    return found


def read_metadata(data: bytes, key: str = METADATA_KEY):
    """The JSON stored under `key` in the file's metadata, or None."""
    model = parse(data)
    for entry in model.metadata or []:
        if _name(entry.name) == key:
            raw = np.asarray(model.buffers[entry.buffer].data, dtype=np.uint8).tobytes()
            return json.loads(raw.decode("utf-8"))
    return None


def with_metadata(data: bytes, payload: dict, key: str = METADATA_KEY) -> bytes:
    """Returns the model with `payload` (JSON) stored under metadata `key`, replacing any old entry."""
    model = parse(data)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(payload, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = key
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != key] + [entry]
    return serialise(model)
