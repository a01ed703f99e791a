"""Run an int8 model in TensorFlow Lite Micro and read its tensor-arena size."""

import contextlib
import os
import re
import tempfile

import numpy as np
from tflite_micro import runtime

from udc.errors import UdcError


def _captured_c_stderr(fn) -> str:
    """Output that `fn` writes to the C-level stderr (where TFLM's allocator prints)."""
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        return capture.read().decode(errors="replace")


@contextlib.contextmanager
def _explained(name: str):
    """A RuntimeError of TFLite Micro as one line (it prints the reason, an unsupported operator or type, on stderr)."""
    try:
        yield
    except RuntimeError as e:
        raise UdcError(f"TFLite Micro cannot run {name} ({e}); it runs full-integer int8 models with its builtin "
                       "operators: rerun with --verbose to see TFLite Micro's reason") from None


class MicroInterpreter:
    """One TFLite Micro interpreter of a model, run input by input (batch 1, as on a device)."""

    def __init__(self, data: bytes, name: str = "the model"):
        self.name = name
        with _explained(name):
            self._interpreter = runtime.Interpreter.from_bytes(data)

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """The output tensor as stored (int8 codes) for each input (int8 codes, one per row)."""
        outputs = []
        with _explained(self.name):
            for x in inputs:
                self._interpreter.set_input(x[None], 0)
                self._interpreter.invoke()
                outputs.append(np.array(self._interpreter.get_output(0))[0])
        return np.stack(outputs)

    def arena_bytes(self) -> int:
        """The tensor arena TFLite Micro allocated for the model."""
        report = _captured_c_stderr(self._interpreter.print_allocations)
        match = re.search(r"Arena allocation total (\d+) bytes", report)
        if not match:
            raise UdcError("TFLite Micro printed no arena size; is the tflite-micro package complete?")
        return int(match.group(1))


def run(data: bytes, inputs: np.ndarray) -> tuple[np.ndarray, int]:
    """Runs TFLM on each int8 input (batch of 1 each); returns (outputs, arena bytes)."""
    interpreter = MicroInterpreter(data)
    return interpreter.outputs(inputs), interpreter.arena_bytes()
