"""A one-layer int8 .tflite around given weight codes: what a compiler measures a layer's weights on.

Vela 5.2's Python API encodes weights only for Ethos-U55 and U65 (`npu_encode_weights`); the
Ethos-U85's encoder lives in its C++ backend, reached only by compiling a model. So an Ethos-U85
layer's encoded bytes are Vela's `total_npu_encoded_weights` of a small model holding that layer
(about 10 ms a compile in-process).

The model is `input -> RELU -> layer -> output` at a 14x14 feature map (stride 1, SAME padding;
a Dense layer takes a (1, in) input). Why the RELU: Vela schedules a network's first operator
with double-buffered weights cut into depth slices, one stream each (16-32 B more than the same
weights behind another operator, which Vela prefetches into a single buffer). Why 14x14: the
block configuration Vela picks follows the feature map, and with it the brick order of the
weights. Measured on a Fashion-MNIST udc model (8 KiB, U85-256): behind a RELU at 14x14 or 28x28
every layer but the first matched its bytes inside the network exactly; at 7x7 or 4x4, or with
no operator before, layers came out 16-32 B off. Over eleven udc models (8-64 KiB) the sum of
the layers and the pooling measured this way was 0.0-0.6 % under Vela's whole-network count.
"""

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from udc import tflite_file

FEATURE_MAP = (14, 14)
_OPERATORS = {"conv": schema.BuiltinOperator.CONV_2D, "depthwise": schema.BuiltinOperator.DEPTHWISE_CONV_2D,
              "dense": schema.BuiltinOperator.FULLY_CONNECTED}
# Quantization of the activations: any valid int8 scales do; the weights' encoding does not depend on them.
_INPUT_SCALE, _WEIGHT_SCALE, _OUTPUT_SCALE = 0.05, 0.01, 0.1


def layer_model(codes, kind: str) -> bytes:
    """The .tflite of `input -> RELU -> one layer` holding `codes` (int8, TFLite layout: OHWI conv,
    1HWC depthwise, (out, in) dense), `kind` one of 'conv', 'depthwise', 'dense'."""
    codes = np.asarray(codes, np.int8)
    builder = _Builder()
    if kind == "dense":
        out_channels, in_channels = codes.shape
        in_shape, out_shape = (1, in_channels), (1, out_channels)
    else:
        # The feature map holds the kernel (a global pooling's ones-kernel spans its whole input).
        height, width = (max(f, k) for f, k in zip(FEATURE_MAP, codes.shape[1:3]))
        out_channels = codes.shape[3] if kind == "depthwise" else codes.shape[0]
        in_shape, out_shape = (1, height, width, codes.shape[3]), (1, height, width, out_channels)
    source = builder.tensor("input", in_shape, schema.TensorType.INT8, _INPUT_SCALE)
    lead = builder.tensor("lead", in_shape, schema.TensorType.INT8, _INPUT_SCALE)
    builder.operator(schema.BuiltinOperator.RELU, [source], lead)
    scales = np.full(out_channels, _WEIGHT_SCALE)
    weights = builder.tensor("weights", codes.shape, schema.TensorType.INT8, scales, codes,
                             axis=3 if kind == "depthwise" else 0)
    bias = builder.tensor("bias", (out_channels,), schema.TensorType.INT32, scales * _INPUT_SCALE,
                          np.zeros(out_channels, np.int32))
    output = builder.tensor("output", out_shape, schema.TensorType.INT8, _OUTPUT_SCALE)
    builder.operator(_OPERATORS[kind], [lead, weights, bias], output, _options(kind))
    return builder.model(source, output)


def _options(kind):
    if kind == "dense":
        return schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT()
    if kind == "depthwise":
        options, options_type = schema.DepthwiseConv2DOptionsT(), schema.BuiltinOptions.DepthwiseConv2DOptions
        options.depthMultiplier = 1
    else:
        options, options_type = schema.Conv2DOptionsT(), schema.BuiltinOptions.Conv2DOptions
    options.padding = schema.Padding.SAME
    options.strideW = options.strideH = options.dilationWFactor = options.dilationHFactor = 1
    return options_type, options


class _Builder:
    """The tensors, buffers and operators of a one-subgraph model (TFLite schema, object API)."""

    def __init__(self):
        self.buffers = [schema.BufferT()]  # buffer 0: empty, by the schema's convention
        self.tensors, self.operators, self.codes = [], [], []

    def tensor(self, name, shape, tensor_type, scales, data=None, axis=0) -> int:
        quantization = schema.QuantizationParametersT()
        quantization.scale = [float(s) for s in np.atleast_1d(scales)]
        quantization.zeroPoint = [0] * len(quantization.scale)
        quantization.quantizedDimension = axis
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.quantization = name, list(shape), tensor_type, quantization
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def operator(self, builtin, inputs, output, options=(schema.BuiltinOptions.NONE, None)):
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
        self.codes.append(code)
        operator = schema.OperatorT()
        operator.opcodeIndex, operator.inputs, operator.outputs = len(self.codes) - 1, list(inputs), [output]
        operator.builtinOptionsType, operator.builtinOptions = options
        self.operators.append(operator)

    def model(self, source, output) -> bytes:
        graph = schema.SubGraphT()
        graph.tensors, graph.operators, graph.inputs, graph.outputs = self.tensors, self.operators, [source], [output]
        model = schema.ModelT()
        model.version, model.subgraphs, model.operatorCodes, model.buffers = 3, [graph], self.codes, self.buffers
        return tflite_file.serialise(model)
