"""Targets: the hardware udc compiles for, each an object found by name.

    from udc.targets import get_target
    target = get_target("ethos-u55-128")           # or ("ethos-u65-256", system_config=..., memory_mode=...)
    target.channel_alignment("conv"), target.compile(tflite_bytes).cycles

`udc.targets.base` holds the `Target` interface and the registry; a target module of this
package registers its targets on import (`udc.targets.ethos_u`: every Ethos-U configuration
Vela accepts). What the Ethos-U targets measure with: `vela` (in-process compile and its
report), `codec` (Vela's U55/U65 weight encoder) and `layer_model` (a one-layer .tflite).
"""

from udc.targets.base import Target, get_target, register_target, target_names, target_of

__all__ = ["Target", "get_target", "register_target", "target_names", "target_of"]
