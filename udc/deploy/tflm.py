"""Run an int8 model in TensorFlow Lite Micro and read its tensor-arena size."""

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


def run(data: bytes, inputs: np.ndarray) -> tuple[np.ndarray, int]:
    """Runs TFLM on each int8 input (batch of 1 each); returns (outputs, arena bytes)."""
    try:
        interpreter = runtime.Interpreter.from_bytes(data)
        outputs = []
        for x in inputs:
            interpreter.set_input(x[None], 0)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_output(0))[0])
    except RuntimeError as e:  # TFLM prints the reason (an unsupported operator or type) on stderr
        raise UdcError(f"TFLite Micro cannot run the model ({e}); it runs full-integer int8 models with "
                       "its builtin operators: rerun with --verbose to see TFLite Micro's reason") from None
    report = _captured_c_stderr(interpreter.print_allocations)
    match = re.search(r"Arena allocation total (\d+) bytes", report)
    if not match:
        raise UdcError("TFLite Micro printed no arena size; is the tflite-micro package complete?")
    return np.stack(outputs), int(match.group(1))
