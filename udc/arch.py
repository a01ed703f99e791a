"""The arch spec: what a search chose, per layer, and what it costs; a typed record with a JSON form.

`ArchSpec` is written by the search (`udc.deploy.ship`, WORKDIR/arch_spec.json) and read by the
fine-tune (each layer's bits), the budget repair (which changes a layer's sparsity), the
export and the report (embedded as JSON). Per layer (`LayerSpec`): width, input width, kernel size,
N:M weight pattern, sparsity, bits, the size model's estimate (calibrated tables) and the codec-measured
bytes (Vela's brick order where its API knows the target) of exactly the weights the
stripped model holds. `measure_arch_spec` makes one from a supernet and a choice.

The JSON form carries `version` (`ARCH_SPEC_VERSION`). Files without one come from udc
before the spec had a type (they named the target `accelerator`) and read the same; version 1
had no weight patterns (every layer dense), versions 1 and 2 no kernel sizes (every layer its
supernet's one kernel), versions 1 to 3 no kernel shapes (a non-square kernel, which is never a choice, has no
kernel size); a file from a newer udc is refused with one line, as is one that lacks a
field, has a wrong type, a pattern its layer cannot take or a kernel size that is not odd.
"""

import dataclasses
import json
from pathlib import Path

from udc.costs import size_model as sm
from udc.errors import ConfigError, UdcError
from udc.fileio import write_json_atomic
from udc.space import layers as search_layers
from udc.space.children import choices_of, set_choices
from udc.space.dimensions import DIMENSIONS, KERNEL_SIZE
from udc.space.patterns import DENSE, parse_pattern, pattern_of

ARCH_SPEC_VERSION = 4  # 4: kernel shapes; 3: a kernel size per layer; 2: a weight pattern per layer
# Choices of one layer: the arch spec's keys that a child is made of, one per search-space dimension.
CHOICE_KEYS = tuple(dim.name for dim in DIMENSIONS)


class ArchSpecError(UdcError):
    """An arch spec file udc cannot read (newer version, missing or malformed field)."""


@dataclasses.dataclass
class LayerSpec:
    name: str
    kind: str  # conv, depthwise or dense (`size_model.layer_kind`)
    width: int
    input_width: int
    sparsity: float
    bits: int
    estimated_bytes: float
    codec_bytes: int
    pattern: str = DENSE
    kernel_size: int | None = None  # None: a spec from before kernel sizes, or a non-square kernel: the layer's one
    kernel_shape: list | None = None  # [height, width] of a convolution's kernel (informational; None: dense, older)

    def choice(self) -> dict:
        """{width, kernel_size, pattern, sparsity, bits}: this layer's entry of a choice dict (`udc.deploy.strip`,
        the search); without a kernel size if the spec has none (`Dimension.chosen` reads the layer's own)."""
        return {key: getattr(self, key) for key in CHOICE_KEYS if getattr(self, key) is not None}


@dataclasses.dataclass
class ArchSpec:
    layers: list  # of LayerSpec, in the supernet's order
    target: str | None  # the target whose codec measured the bytes (None: the codec's flat stream)
    extra_bytes: int  # weights outside the searchable layers (the pooling's ones-kernel)
    estimated_bytes: float
    codec_bytes: int
    backbone: str = ""
    dataset: str = ""
    budget_bytes: int = 0
    limit_bytes: int = 0  # what selection fitted the codec bytes to (the budget less its margin)
    selection: dict | None = None  # how the child was chosen (candidates and their validation accuracy)
    budget_cycles: int = 0
    limit_cycles: int = 0
    estimated_cycles: int = 0  # the cycle tables' figure at selection (with a cycle budget)
    repairs: list = dataclasses.field(default_factory=list)  # budget repairs after the fine-tune
    version: int = ARCH_SPEC_VERSION

    def choices(self) -> dict:
        """{layer name: {width, kernel_size, pattern, sparsity, bits}}: the child this spec describes."""
        return {layer.name: layer.choice() for layer in self.layers}

    def bits(self) -> dict:
        return {layer.name: layer.bits for layer in self.layers}

    def layer(self, name) -> LayerSpec:
        return next(layer for layer in self.layers if layer.name == name)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict, source="the arch spec") -> "ArchSpec":
        """The spec of `data` (a dict from `to_json` or an arch_spec.json); ArchSpecError naming
        `source` for one udc cannot read."""
        if not isinstance(data, dict):
            raise ArchSpecError(f"{source} is not an arch spec (a JSON object); write it with udc-search")
        data = dict(data)
        version = data.pop("version", 0)
        if not isinstance(version, int) or version > ARCH_SPEC_VERSION:
            raise ArchSpecError(f"{source} has version {version}, newer than this udc reads "
                                f"({ARCH_SPEC_VERSION}); upgrade udc")
        if "accelerator" in data:  # version 0 named the target so
            data.setdefault("target", data.pop("accelerator"))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in fields}  # unknown keys: written by a later udc, ignored
        missing = [f.name for f in fields.values()
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in known]
        if missing:
            raise ArchSpecError(f"{source} is malformed (it lacks {', '.join(missing)}); write it again with udc-search")
        try:
            layers = [_layer_from_json(layer) for layer in known.pop("layers")]
            return cls(layers=layers, **known, version=ARCH_SPEC_VERSION)
        except (KeyError, TypeError, ValueError) as e:
            raise ArchSpecError(f"{source} is malformed ({_reason(e)}); write it again with udc-search") from None

    def save(self, path) -> Path:
        write_json_atomic(Path(path), self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path) -> "ArchSpec":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ArchSpecError(f"no arch spec at {path}; run udc-search for it first") from None
        except json.JSONDecodeError as e:
            raise ArchSpecError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); "
                                "write it again with udc-search") from None
        return cls.from_json(data, source=str(path))


_LAYER_TYPES = {"name": str, "kind": str, "width": int, "input_width": int, "sparsity": float, "bits": int,
                "estimated_bytes": float, "codec_bytes": int}
_TYPE_NAMES = {str: "text", int: "whole number", float: "number"}


def _layer_from_json(data) -> LayerSpec:
    missing = [k for k in _LAYER_TYPES if k not in data]
    if missing:
        raise KeyError(f"layer {data.get('name', '?')} lacks {', '.join(missing)}")
    values = {}
    for key, kind in _LAYER_TYPES.items():
        value = data[key]
        fits = (isinstance(value, str) if kind is str else
                not isinstance(value, bool) and (isinstance(value, int) or kind is float and isinstance(value, float)))
        if not fits:
            raise TypeError(f"layer {data['name']}: {key} is {value!r}, not a {_TYPE_NAMES[kind]}")
        values[key] = kind(value)
    pattern = data.get("pattern", DENSE)  # version 1 had none: dense
    try:
        parse_pattern(pattern)
    except ConfigError:
        raise ValueError(f"layer {data['name']}: pattern {pattern!r} is not 'dense' or 'N:M'") from None
    if pattern != DENSE and values["kind"] == "depthwise":
        raise ValueError(f"layer {data['name']} is depthwise and cannot take the pattern {pattern} "
                         "(one input channel per filter); set its pattern to 'dense'")
    kernel_size = data.get("kernel_size")  # versions 1 and 2 had none
    if kernel_size is not None and not (isinstance(kernel_size, int) and not isinstance(kernel_size, bool)
                                        and kernel_size > 0 and kernel_size % 2 == 1):
        raise ValueError(f"layer {data['name']}: kernel_size {kernel_size!r} is not an odd positive whole number")
    kernel_shape = data.get("kernel_shape")  # versions before 4 had none
    if kernel_shape is not None and not (isinstance(kernel_shape, list) and len(kernel_shape) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in kernel_shape)):
        raise ValueError(f"layer {data['name']}: kernel_shape {kernel_shape!r} is not [height, width]")
    return LayerSpec(**values, pattern=pattern, kernel_size=kernel_size, kernel_shape=kernel_shape)


def _reason(error) -> str:
    return error.args[0] if error.args else type(error).__name__


def _kernel_size(layer, choice):
    """The chosen kernel size; None for a layer whose one kernel is not square (DS-CNN's 10x4)."""
    size = int(KERNEL_SIZE.chosen(layer, choice))
    return None if sm.layer_kind(layer) != "dense" and len(set(layer.kernel_shape(size))) > 1 else size


def _kernel_shape(layer, choices):
    if sm.layer_kind(layer) == "dense":
        return None
    return [int(n) for n in layer.kernel_shape(KERNEL_SIZE.chosen(layer, choices[layer.name]))]


def measure_arch_spec(supernet, choices, tables, extra_bytes=0, **fields) -> ArchSpec:
    """The spec of the child `choices` of `supernet`: its bytes measured by the codec of `tables`' target
    and estimated by `tables` (a calibrated `size_model.CodecTables`), `fields` as given. The supernet
    is left as it was."""
    target = tables.target
    layers = search_layers.searchable_layers(supernet)
    choices = choices or choices_of(supernet)
    codec = sm.network_codec_bytes(layers, choices, target=target, order=tables.order)
    saved = {layer.name: [v.numpy() for v in layer.architecture_variables()] + [layer.hard.numpy()]
             for layer in layers}
    set_choices(supernet, choices)
    for layer in layers:
        layer.hard.assign(1.0)
    estimated = {layer.name: float(sm.layer_expected_bytes(layer, tables)) for layer in layers}
    for layer in layers:
        for v, value in zip(layer.architecture_variables() + [layer.hard], saved[layer.name]):
            v.assign(value)
    spec_layers = [
        LayerSpec(name=layer.name, kind=sm.layer_kind(layer), width=int(choices[layer.name]["width"]),
                  input_width=sm.input_width_of(layer, choices) or layer.max_input_width,
                  pattern=pattern_of(choices[layer.name]),
                  kernel_size=_kernel_size(layer, choices[layer.name]), kernel_shape=_kernel_shape(layer, choices),
                  sparsity=float(choices[layer.name]["sparsity"]), bits=int(choices[layer.name]["bits"]),
                  estimated_bytes=round(estimated[layer.name], 1), codec_bytes=int(codec[layer.name]))
        for layer in layers]
    return ArchSpec(layers=spec_layers, target=None if target is None else target.name,
                    extra_bytes=int(round(extra_bytes)),
                    estimated_bytes=round(sum(estimated.values()) + extra_bytes, 1),
                    codec_bytes=int(codec["total"] + round(extra_bytes)), **fields)
