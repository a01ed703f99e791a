"""Targets and their measurements: Vela compilation, the weight codec, TFLite Micro."""

from udc.hardware.accelerators import ACCELERATORS, Target, resolve_target
from udc.hardware.codec import encoded_bytes
from udc.hardware.vela import VelaResult, compile_model

__all__ = ["ACCELERATORS", "Target", "VelaResult", "compile_model", "encoded_bytes", "resolve_target"]
