"""The choice lists of the search: widths, kernel sizes, N:M weight patterns, sparsity rates and weight bit-widths.

Each list is validated once, here, and raises `ConfigError` with a one-line message
that names the override to fix (`--config.search.widths`, `.kernel_sizes`, `.patterns`, `.sparsities`,
`.bits`):
empty lists, entries that are not numbers (an override such as `bits=abc` arrives as
the string tuple `('abc',)`), lists that are not strictly increasing, widths that are
not a multiple of the target's channel alignment or exceed the backbone's width,
sparsity rates outside [0, 1), bit-widths outside 2..8, kernel sizes that are not odd, patterns
other than "dense" and "N:M" or without "dense" first.

Widths are multiples of the target's channel alignment (`Target.channel_alignment`,
`SearchOptions.for_target`): a count in between pays for the next multiple. Patterns go
only to the layer kinds the target runs them on (`Target.unsupported`; the Ethos-U85 runs
2:4 on convolutions and Dense layers, never on depthwise ones): the others stay dense. Kernel
sizes go to the convolutions whose stride and padding let a smaller kernel be the centre of the
larger one (`udc.space.kernel_sizes.crops_exactly`; e.g. not a 1x1 at stride 2 on an even input).
"""

import dataclasses
import math
import numbers

from udc.errors import ConfigError
from udc.space.kernel_sizes import crops_exactly
from udc.space.patterns import DENSE, parse_pattern
from udc.space.quantizers import MAX_BITS, MIN_BITS

DEFAULT_SPARSITIES = (0.0, 0.25, 0.5, 0.75, 0.9)
DEFAULT_BITS = (2, 3, 4, 5, 6, 8)
DEFAULT_PATTERNS = (DENSE,)
DEFAULT_ALIGNMENT = 8
LAYER_KINDS = ("conv", "depthwise", "dense")


@dataclasses.dataclass(frozen=True)
class _OptionList:
    """One config key that holds a list of choices: what its entries must be, and an example."""

    noun: str  # singular, e.g. "bit-width"
    flag: str  # the override that sets it
    rule: str  # what each entry must be
    example: str

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{problem}; {self.flag} must be {self.rule}, e.g. {self.flag}='{self.example}'")


_WIDTHS = _OptionList("width", "--config.search.widths", "positive integers", "(8,16,32)")
_SPARSITIES = _OptionList("sparsity", "--config.search.sparsities", "fractions in [0, 1)", "(0.0,0.5,0.75)")
_KERNEL_SIZES = _OptionList("kernel size", "--config.search.kernel_sizes", "odd positive integers", "(3,5)")
_BITS = _OptionList("bit-width", "--config.search.bits", f"integers from {MIN_BITS} to {MAX_BITS}", "(2,4,8)")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value) -> bool:
    return _is_number(value) and int(value) == value


def _is_width(value) -> bool:
    return _is_integer(value) and value > 0


def _check_list(values, option: _OptionList, is_valid) -> tuple:
    """`values` as a tuple: non-empty, every entry passing `is_valid`, strictly increasing."""
    values = tuple(values) if values is not None else ()
    if not values:
        raise option.error(f"the {option.noun} list is empty")
    for value in values:
        if not is_valid(value):
            raise option.error(f"{option.noun} {value!r} is not valid")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise option.error(f"the {option.noun} list {list(values)} is not strictly increasing (sort it, drop duplicates)")
    return values


def width_options(max_width: int, alignment: int = DEFAULT_ALIGNMENT, widths=None) -> tuple:
    """Output-channel options of a layer whose largest shape has `max_width` channels.

    Default: every multiple of `alignment` up to `max_width` (the largest always
    included, even if `max_width` itself is not aligned, e.g. a 10-class classifier).
    """
    if alignment < 1:
        raise ConfigError(f"width alignment must be a positive integer, got {alignment}")
    if widths is None:
        widths = [w for w in range(alignment, max_width, alignment)] + [max_width]
        return tuple(widths)
    widths = _check_list(widths, _WIDTHS, _is_width)
    for w in widths:
        if w > max_width:
            raise ConfigError(f"width {w} exceeds the backbone's {max_width} channels; remove it from {_WIDTHS.flag}")
        if w != max_width:
            _check_aligned(w, alignment)
    return tuple(int(w) for w in widths)


def _check_aligned(width: int, alignment: int) -> None:
    if width % alignment:
        raise ConfigError(f"width {width} is not a multiple of the target's channel alignment {alignment}; "
                          f"use multiples of {alignment} in {_WIDTHS.flag}")


def pattern_options(patterns=DEFAULT_PATTERNS) -> tuple:
    """Weight patterns, "dense" first (the larger network), then N:M ones (`udc.space.patterns`)."""
    patterns = tuple(patterns) if patterns is not None else ()
    for pattern in patterns:
        parse_pattern(pattern)
    if not patterns or patterns[0] != DENSE or len(set(patterns)) != len(patterns):
        raise ConfigError(f"the pattern list {list(patterns)} must start with 'dense' and hold each pattern once, "
                          "e.g. --config.search.patterns='(\"dense\",\"2:4\")'")
    return tuple(str(p) for p in patterns)


def kernel_size_options(kernel_sizes) -> tuple:
    """Square kernel sizes, smallest first: odd (a smaller option is the centre of the largest)."""
    kernel_sizes = _check_list(kernel_sizes, _KERNEL_SIZES, lambda k: _is_width(k) and k % 2 == 1)
    return tuple(int(k) for k in kernel_sizes)


def sparsity_options(sparsities=DEFAULT_SPARSITIES) -> tuple:
    sparsities = _check_list(sparsities, _SPARSITIES, lambda s: _is_number(s) and 0.0 <= s < 1.0)
    return tuple(float(s) for s in sparsities)


def bit_options(bits=DEFAULT_BITS) -> tuple:
    """Weight bit-widths (weights stay int8 in the file: fewer bits use fewer of its levels)."""
    bits = _check_list(bits, _BITS, lambda b: _is_integer(b) and MIN_BITS <= b <= MAX_BITS)
    return tuple(int(b) for b in bits)


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """Validated choices shared by the searchable layers of a network.

    `widths=None` means "every multiple of the alignment up to each layer's width";
    an explicit list applies to every layer (entries above a layer's width are dropped
    for that layer, the layer's own width is always kept).
    """

    sparsities: tuple = DEFAULT_SPARSITIES
    bits: tuple = DEFAULT_BITS
    widths: tuple | None = None
    alignment: int = DEFAULT_ALIGNMENT
    patterns: tuple = DEFAULT_PATTERNS
    # The layer kinds that stay dense whatever `patterns` holds (the target does not run a pattern on them).
    dense_kinds: tuple = ("depthwise",)
    kernel_sizes: tuple | None = None  # None: every convolution keeps the backbone's kernel size

    def __post_init__(self):
        object.__setattr__(self, "patterns", pattern_options(self.patterns))
        if self.kernel_sizes is not None:
            object.__setattr__(self, "kernel_sizes", kernel_size_options(self.kernel_sizes))
        object.__setattr__(self, "sparsities", sparsity_options(self.sparsities))
        object.__setattr__(self, "bits", bit_options(self.bits))
        if self.widths is not None:  # entries checked before max() compares them
            widths = _check_list(self.widths, _WIDTHS, _is_width)
            for w in widths:  # each is an option of every wider layer, so each must be aligned
                _check_aligned(w, self.alignment)
            object.__setattr__(self, "widths", width_options(max(widths), self.alignment, widths))

    @classmethod
    def for_target(cls, target, **kwargs) -> "SearchOptions":
        """Options whose widths follow `target`'s channel alignment (a udc.targets.Target; the
        alignment of convolutions, whose widths the search chooses) and whose patterns go to the layer
        kinds it runs them on."""
        patterns = pattern_options(kwargs.get("patterns", DEFAULT_PATTERNS))
        dense_kinds = tuple(kind for kind in LAYER_KINDS
                            if any(target.unsupported(kind, "pattern", p) for p in patterns[1:]))
        return cls(alignment=target.channel_alignment("conv"), dense_kinds=dense_kinds, **kwargs)

    def patterns_for(self, kind: str) -> tuple:
        """The patterns a layer of `kind` ('conv', 'depthwise', 'dense') chooses from."""
        return DEFAULT_PATTERNS if kind in self.dense_kinds else self.patterns

    def kernel_sizes_for(self, kernel_size: int, input_size, strides, padding: str = "same") -> tuple:
        """The kernel sizes a convolution of the backbone's `kernel_size` chooses from: those of the options
        whose centre crop computes the smaller convolution at its `strides` on an `input_size` (height,
        width) input (its largest option is the kernel it holds), or its own size if the options name none."""
        if self.kernel_sizes is None:
            return (int(kernel_size),)
        largest = max(self.kernel_sizes)
        return tuple(k for k in self.kernel_sizes if crops_exactly(k, largest, input_size, strides, padding))

    def widths_for(self, max_width: int) -> tuple:
        if self.widths is None:
            return width_options(max_width, self.alignment)
        kept = [w for w in self.widths if w < max_width] + [max_width]
        return width_options(max_width, self.alignment, kept)
