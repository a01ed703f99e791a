"""The choices of the search and the layers that learn them: options, quantizers, searchable layers."""

from udc.search_space.layers import (
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
from udc.search_space.options import SearchOptions, bit_options, sparsity_options, width_options
from udc.search_space.quantizers import GridQuantizeConfig, GridWeightQuantizer, grid_codes, grid_quantize

__all__ = [
    "GridQuantizeConfig", "GridWeightQuantizer", "SearchOptions", "SearchableConv2D", "SearchableDense",
    "SearchableDepthwiseConv2D", "TemperatureAnnealing", "architecture_variables", "bit_options", "grid_codes",
    "grid_quantize", "searchable_layers", "set_hard", "set_temperature", "sparsity_options", "temperature_at",
    "width_options",
]
