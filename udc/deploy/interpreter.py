"""Run an int8 .tflite classifier on the host (LiteRT) to measure what the file itself does."""

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from udc import tflite_file
from udc.errors import UdcError

_BATCH = 256


class TfliteClassifier:
    """An int8 (or float) TFLite classifier: float images in, logits or probabilities out."""

    def __init__(self, data: bytes, name: str = "model"):
        tflite_file.check_tflite_bytes(data, name)
        self.data = data
        self.name = name
        try:
            self._interpreter = Interpreter(model_content=data)
        except (ValueError, RuntimeError) as e:  # a flatbuffer LiteRT's verifier or op resolver refuses
            raise UdcError(f"LiteRT cannot load {name} ({' '.join(str(e).split())}); re-export it") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = None

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self._input["shape"][1:])

    @property
    def num_classes(self) -> int:
        return int(self._output["shape"][-1])

    @property
    def input_details(self) -> dict:
        """LiteRT's details of the input tensor (index, dtype, shape, quantization)."""
        return self._input

    @property
    def output_details(self) -> dict:
        return self._output

    @property
    def input_quantization(self) -> tuple:
        return tuple(float(v) for v in self._input["quantization"])

    @property
    def output_quantization(self) -> tuple:
        return tuple(float(v) for v in self._output["quantization"])

    def quantize_input(self, images: np.ndarray) -> np.ndarray:
        """Float images as the model's input dtype (int8 with its scale and zero point)."""
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return images.astype(np.float32)
        scale, zero_point = self.input_quantization
        info = np.iinfo(dtype)
        return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)

    def _resize(self, batch: int):
        if batch != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], (batch,) + self.input_shape)
            self._interpreter.allocate_tensors()
            self._batch = batch

    def raw_outputs(self, images: np.ndarray) -> np.ndarray:
        """The output tensor as stored (int8 codes for an int8 model), one row per image."""
        if images.shape[1:] != self.input_shape:
            raise UdcError(
                f"{self.name} expects inputs of shape {self.input_shape}, got {images.shape[1:]}"
            )
        rows = []
        for start in range(0, len(images), _BATCH):
            chunk = self.quantize_input(images[start : start + _BATCH])
            self._resize(len(chunk))
            self._interpreter.set_tensor(self._input["index"], chunk)
            self._interpreter.invoke()
            rows.append(self._interpreter.get_tensor(self._output["index"]).copy())
        return np.concatenate(rows) if rows else np.zeros((0, self.num_classes))

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.dequantize_output(self.raw_outputs(images))

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        """Stored outputs (int8 codes, or floats of a float model) as float logits."""
        raw = raw.astype(np.float32)
        if self._output["dtype"] == np.float32:
            return raw
        scale, zero_point = self.output_quantization
        return (raw - zero_point) * scale

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        z = self.logits(images)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(np.argmax(self.raw_outputs(images), axis=1) == labels))
