"""Targets: the hardware udc compiles for, each an object found by name.

    from udc.targets import get_target
    target = get_target("ethos-u55-128")           # or ("ethos-u65-256", system_config=..., memory_mode=...)
    target.channel_alignment("conv"), target.compile(tflite_bytes).cycles

`udc.targets.base` holds the `Target` interface and the registry; each other module of
this package registers its targets (`udc.targets.ethos_u`: every Ethos-U configuration
Vela accepts).
"""

from udc.targets.base import Target, get_target, register_target, target_names, target_of

__all__ = ["Target", "get_target", "register_target", "target_names", "target_of"]
