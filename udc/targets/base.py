"""What every target is, and the registry that finds one by name.

A target is the hardware a model is compiled for. It knows its own facts (how channel
counts should align, how it stores weights, how to compile and measure a model), so the
search, strip, export and report ask the target instead of naming an accelerator.

Adding a target takes one module in `udc/targets/` that subclasses `Target` and calls
`register_target` for its names at import: `get_target` imports every module of the
package before it looks a name up, so nothing else needs editing.
"""

import abc
import importlib
import pkgutil

from udc.errors import UnknownTargetError

_FACTORIES = {}  # target name -> callable(**options) -> Target


class Target(abc.ABC):
    """The hardware a model is compiled for: its name, facts and measurements."""

    name: str

    @abc.abstractmethod
    def channel_alignment(self, kind: str) -> int:
        """The channel multiple a layer of `kind` ('conv', 'depthwise', 'dense') should have on this
        target: a count in between pays for the next multiple's weights or cycles."""

    @abc.abstractmethod
    def encoded_weight_bytes(self, codes, kind: str, traversal=None) -> int:
        """The bytes this target stores for one layer's int8 weight codes (TFLite layout: OHWI conv,
        1HWC depthwise, (out, in) dense); `traversal` one of `weight_traversals(kind)`."""

    def unsupported(self, kind: str, dimension: str, option) -> str | None:
        """Why this target cannot run `option` of the search dimension `dimension` ('pattern', 'sparsity',
        'bits') on a layer of `kind`; None where it can. The default runs every option."""
        return None

    def weight_traversals(self, kind: str) -> tuple:
        """The orders in which this target may lay out a layer's weights, each with its own size table
        in the size model (at most `udc.costs.size_model.TRAVERSALS`); (None,): one order."""
        return (None,)

    def weight_traversal(self, kind: str, input_depth: int, kernel_area: int) -> int:
        """The index of the traversal this target uses for a layer of this input depth (0 with one order)."""
        return 0

    @abc.abstractmethod
    def compile(self, data: bytes, name: str = "model"):
        """Compiles a .tflite (bytes) for this target: a measurement with `encoded_weight_bytes`,
        `flash_kib`, `sram_kib`, `cycles`, `npu_ops`, `cpu_ops`, `optimised_model` and `summary()`."""

    @abc.abstractmethod
    def operator_cycles(self, data: bytes) -> list[dict]:
        """Per operator of a .tflite (in its order): {'op': its name, 'cycles': the target's estimate}, what
        the cycle model (`udc.costs.cycle_model`) is measured from."""

    @property
    @abc.abstractmethod
    def clock_hz(self) -> float:
        """The NPU's clock: what turns a latency in seconds into cycles."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """JSON-ready facts for reports: at least {'name': ...}."""


def register_target(name: str, factory) -> None:
    """Makes `get_target(name, **options)` return `factory(**options)`."""
    _FACTORIES[name] = factory


def _discover() -> None:
    """Imports every module of udc.targets (each registers its targets; an imported one is not run again)."""
    import udc.targets as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def target_names() -> tuple:
    """Every registered target name, sorted."""
    _discover()
    return tuple(sorted(_FACTORIES))


def target_of(config, name: str | None = None) -> Target:
    """The target a config names (`export.accelerator`; an explicit `name` wins), with the config's
    `export.system_config` and `export.memory_mode` where set."""
    options = {key: config.export[key] for key in ("system_config", "memory_mode") if config.export.get(key)}
    return get_target(name or config.export.accelerator, **options)


def get_target(name: str, **options) -> Target:
    """The target called `name` (e.g. 'ethos-u55-128'), built with its `options` (for Ethos-U:
    `system_config`, `memory_mode`). UnknownTargetError names the registered ones."""
    _discover()
    if name not in _FACTORIES:
        raise UnknownTargetError(f"unknown target '{name}'; choose one of: {', '.join(target_names())}")
    return _FACTORIES[name](**options)
