"""Cost models of a supernet's choices on a target: where the search space meets the hardware.

`size_model`: exact and expected encoded weight bytes (Vela's weight codec, or the target's own
compile); `cycle_model`: exact and expected NPU cycles from tables Vela measured; `narrowing`:
the probe models cut from an exported .tflite that the cycle tables are measured on.
"""
