"""Measurements of weights: the Ethos-U weight codec and its size model, TFLite Micro."""

from udc.hardware.codec import encoded_bytes

__all__ = ["encoded_bytes"]
