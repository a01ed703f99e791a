"""The search space, with no hardware in it: dimensions, quantizers, searchable layers, supernets."""

from udc.space.layers import (
    SearchableConv2D,
    SearchableDense,
    SearchableDepthwiseConv2D,
    TemperatureAnnealing,
    architecture_variables,
    searchable_layers,
    set_hard,
    set_temperature,
    temperature_at,
)
from udc.space.options import SearchOptions, bit_options, sparsity_options, width_options
from udc.space.quantizers import GridQuantizeConfig, GridWeightQuantizer, grid_codes, grid_quantize

__all__ = [
    "GridQuantizeConfig", "GridWeightQuantizer", "SearchOptions", "SearchableConv2D", "SearchableDense",
    "SearchableDepthwiseConv2D", "TemperatureAnnealing", "architecture_variables", "bit_options", "grid_codes",
    "grid_quantize", "searchable_layers", "set_hard", "set_temperature", "sparsity_options", "temperature_at",
    "width_options",
]
