"""Reading, checking and rewriting TFLite flatbuffers through the TFLite schema (object API).

Every .tflite that comes into udc passes `check_int8` (or `read_int8_model`): udc
measures and deploys full-integer int8 models only.

Uses the schema module generated for TFLite and the `flatbuffers` package, so a
rewritten file (metadata added, quantization parameters repaired) is a plain TFLite
file that the converter, Vela and TFLite Micro read as usual. The schema module is
tflite-micro's copy: the same generated code as TensorFlow's (TensorFlow 2.21's
operators, types and options; tflite-micro's adds two newer float8 types), read
without TensorFlow's start-up, so a bad file is refused in a fraction of a second.
"""

import dataclasses
import json
from pathlib import Path

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema  # noqa: F401 (re-exported)

from udc.errors import NotATfliteFileError, NotInt8ModelError

FILE_IDENTIFIER = b"TFL3"
METADATA_KEY = "udc"

# Builtin operators whose second input is a weight tensor stored in a buffer.
WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}
# The weight operators udc searches and exports, and the layer kind each is (targets and cost models use it).
OP_KINDS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "dense"}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_NUMPY_TYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32,
                "INT64": np.int64, "FLOAT32": np.float32, "FLOAT16": np.float16}


def check_tflite_bytes(data: bytes, source="input") -> None:
    if len(data) == 0:
        raise NotATfliteFileError(f"{source} is empty (0 bytes); give a .tflite file written by the TFLite "
                                  "converter or udc-export")
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


def parse(data: bytes, source="the TFLite flatbuffer") -> schema.ModelT:
    check_tflite_bytes(data, source)
    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAs(bytearray(data), 0))
    except Exception:  # a cut or corrupt table raises anything from struct.error to IndexError
        raise NotATfliteFileError(f"{source} is truncated or corrupt (its tables point outside the file); "
                                  "re-export it") from None


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
    op_index: int  # the operator's index in its subgraph


def weight_tensors(model: schema.ModelT) -> list[WeightTensor]:
    found = []
    for sg in model.subgraphs:
        for index, op in enumerate(sg.operators):
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
                input_tensor=sg.tensors[op.inputs[in_pos]], op_index=index,
            ))
    return found


def input_shape(model: schema.ModelT) -> tuple:
    """The shape of the model's (first) input, e.g. (1, 28, 28, 1)."""
    main = model.subgraphs[0]
    return tuple(int(d) for d in main.tensors[main.inputs[0]].shape)


def read_int8_model(path) -> bytes:
    """The bytes of a full-integer int8 .tflite; any other file is refused (see check_int8)."""
    data = read_bytes(path)
    check_int8(data, str(path))
    return data


def _float_type(tensor) -> bool:
    return _TYPE_NAMES.get(tensor.type, "").startswith(("FLOAT", "COMPLEX"))


def _non_int8_tensor(model: schema.ModelT) -> str | None:
    """The first tensor that makes the model other than full-integer int8, described, or None."""
    main = model.subgraphs[0]
    for role, indices in (("input", main.inputs if main.inputs is not None else []),
                          ("output", main.outputs if main.outputs is not None else [])):
        for i in indices:
            if main.tensors[i].type != schema.TensorType.INT8:
                return f"its {role} '{_name(main.tensors[i].name)}' is {_TYPE_NAMES[main.tensors[i].type]}"
    for sg in model.subgraphs:
        for op in sg.operators or []:
            name = op_name(model, op)
            if name not in WEIGHT_OPS:
                continue
            w = sg.tensors[op.inputs[1]]
            if w.type != schema.TensorType.INT8:
                return f"the weights '{_name(w.name)}' of {name} are {_TYPE_NAMES[w.type]}"
        for t in sg.tensors or []:
            if _float_type(t):
                return f"the tensor '{_name(t.name)}' is {_TYPE_NAMES[t.type]}"
    return None


def _kind(model: schema.ModelT) -> str:
    """What a model that is not full-integer int8 is, in the converter's terms."""
    if not any(_float_type(t) for sg in model.subgraphs for t in sg.tensors or []):
        return "an integer model that is not int8 throughout"
    weights = weight_tensors(model)
    if not any(w.dtype == "INT8" for w in weights):
        return "a float model"
    if any(_float_type(w.input_tensor) for w in weights):
        return "a dynamic-range model (int8 weights, float activations)"
    main = model.subgraphs[0]
    if any(_float_type(main.tensors[i]) for i in list(main.inputs) + list(main.outputs)):
        return "an int8 model with float input/output"
    return "a partly float model"


FULL_INTEGER_FIX = ("udc needs a full-integer int8 model (int8 input and output, int8 weights, int8 activations): "
                    "convert the Keras model with udc-export --model=<the Keras model>, or use the TFLite converter "
                    "with a representative dataset and inference_input_type=tf.int8, inference_output_type=tf.int8")


def check_int8(data: bytes, source="input") -> schema.ModelT:
    """The parsed model, if it is full-integer int8; else NotInt8ModelError naming the first offending tensor.

    A float or dynamic-range model would run, but LiteRT's accuracy, Vela's NPU mapping and
    cycles, the weight codec and TFLite Micro all measure (or refuse) something other than
    the int8 model that udc deploys.
    """
    model = parse(data, source)
    if not model.subgraphs:
        raise NotATfliteFileError(f"{source} has no subgraph (no operators to run); re-export it")
    problem = _non_int8_tensor(model)
    if problem:
        raise NotInt8ModelError(f"{source} is {_kind(model)}: {problem}; {FULL_INTEGER_FIX}")
    return model


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
