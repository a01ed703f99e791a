"""A target that exists only for tests: one module, as `udc.targets` asks of a new target.

Its weight cost is a table: bytes per nonzero code by layer kind, plus a fixed header per
layer. Compiling a model sums that table over the model's weight tensors.
"""

import dataclasses

import numpy as np

from udc import tflite_file
from udc.targets.base import Target, register_target

BYTES_PER_NONZERO = {"conv": 1.0, "depthwise": 1.0, "dense": 0.5}
HEADER_BYTES = 16


@dataclasses.dataclass(frozen=True)
class FakeMeasurement:
    encoded_weight_bytes: int
    cycles: int


@dataclasses.dataclass(frozen=True)
class FakeNpu(Target):
    name: str = "fake-npu"

    def channel_alignment(self, kind: str) -> int:
        return 4

    def unsupported(self, kind: str, dimension: str, option) -> str | None:
        if dimension == "bits" and option < 4:
            return "its weight decoder reads 4- to 8-bit codes"
        return None

    def encoded_weight_bytes(self, codes, kind: str, traversal=None) -> int:
        return int(np.count_nonzero(codes) * BYTES_PER_NONZERO[kind]) + HEADER_BYTES

    def compile(self, data: bytes, name: str = "model") -> FakeMeasurement:
        tensors = [w for w in tflite_file.weight_tensors(tflite_file.parse(data)) if w.op in tflite_file.OP_KINDS]
        total = sum(self.encoded_weight_bytes(w.values, tflite_file.OP_KINDS[w.op]) for w in tensors)
        return FakeMeasurement(encoded_weight_bytes=total, cycles=total)

    def operator_cycles(self, data: bytes) -> list[dict]:
        # A weight operator computes one cycle per weight and fetches one byte per cycle.
        model = tflite_file.parse(data)
        weights = iter(tflite_file.weight_tensors(model))
        found = []
        for op in model.subgraphs[0].operators:
            name = tflite_file.op_name(model, op)
            compute = fetch = 0
            if name in tflite_file.OP_KINDS:
                w = next(weights)
                compute, fetch = w.values.size, self.encoded_weight_bytes(w.values, tflite_file.OP_KINDS[name])
            found.append({"op": name, "cycles": max(compute, fetch)})
        return found

    @property
    def clock_hz(self) -> float:
        return 100e6

    def describe(self) -> dict:
        return {"name": self.name}


register_target("fake-npu", FakeNpu)
