"""Strip: a supernet with chosen options -> a plain tf_keras model (its arch spec: `udc.arch`).

For each searchable layer the kernel is cut to the centre of the chosen kernel size
(`udc.space.kernel_sizes`) and to the chosen (input width, output width), cut to its N:M weight pattern (`udc.space.patterns`), magnitude-pruned *over that sub-kernel* to the
chosen rate (the rule of the hard supernet and of `size_model.layer_codes`), rounded to its
b-bit grid, and the layer's
BatchNorm is folded in (a per-output-channel factor: zeros stay zeros and each channel's
grid levels stay the same). The plain layer holds its activation inside (what tfmot
needs, see docs/stack_facts.md). The result computes what the hard supernet computes in inference.
"""

import numpy as np

from udc.compat import keras
from udc.costs import size_model as sm
from udc.deploy.convert import convert_to_int8
from udc.deploy.fold import batch_norm_params, fold_into
from udc.space import layers as search_layers
from udc.space.derive import inbound_layers
from udc.space.children import choices_of
from udc.space.dimensions import KERNEL_SIZE
from udc.space.patterns import DENSE, pattern_of
from udc.space.quantizers import grid_quantize


def _sub_kernel(layer, c, input_width, input_rows):
    kernel = layer.centre(layer.kernel.numpy(), KERNEL_SIZE.chosen(layer, c))
    rows = np.arange(input_width) if input_rows is None else input_rows  # after a Concatenate, each block's live rows
    kernel = np.take(kernel, rows, axis=layer.in_axis)
    if isinstance(layer, search_layers.SearchableDepthwiseConv2D):
        sub, axis = kernel, 2
    else:
        sub, axis = kernel[..., :c["width"]], (None if isinstance(layer, search_layers.SearchableDense) else -1)
    pruned = sm.prune(sub, pattern_of(c), c["sparsity"], layer.in_axis)
    return pruned, grid_quantize(pruned, c["bits"], axis).numpy()


def _fold(layer, kernel, width):
    """Folds the layer's bias and inference BatchNorm into (kernel, bias) per output channel."""
    bias = layer.bias.numpy()[:width] if layer.bias is not None else np.zeros(width, np.float32)
    if layer.bn is None:
        return kernel, bias
    params = {k: v if k == "epsilon" else v[:width] for k, v in batch_norm_params(layer.bn).items()}
    axis = 2 if isinstance(layer, search_layers.SearchableDepthwiseConv2D) else -1
    return fold_into(kernel, bias, params, axis)


def _plain_layer(layer, c, width):
    activation = keras.activations.serialize(layer.activation) if layer.activation is not None else None
    if isinstance(layer, search_layers.SearchableDense):
        return keras.layers.Dense(width, activation=activation, name=layer.name)
    kernel_size = layer.kernel_shape(KERNEL_SIZE.chosen(layer, c))
    if isinstance(layer, search_layers.SearchableDepthwiseConv2D):
        return keras.layers.DepthwiseConv2D(kernel_size, strides=layer.strides, padding=layer.padding.lower(),
                                            activation=activation, name=layer.name)
    return keras.layers.Conv2D(width, kernel_size, strides=layer.strides, padding=layer.padding.lower(),
                               activation=activation, name=layer.name)


def strip(supernet, choices=None, name=None):
    """(plain model, sparsity masks {layer name: 0/1 kernel mask}) for `choices` (default: the decoded choices).
    The masks hold the zeros of the pattern and of the sparsity rate: the fine-tune keeps both.

    It follows the supernet's graph: the layers a residual Add joins share their width group's width.
    """
    choices = choices or choices_of(supernet)
    inputs = keras.Input(shape=supernet.input_shape[1:], name=supernet.layers[0].name)
    tensors, inbound = {supernet.layers[0].name: inputs}, inbound_layers(supernet)
    weights, masks = {}, {}
    for layer in supernet.layers[1:]:
        x = [tensors[source] for source in inbound[layer.name]]
        if isinstance(layer, search_layers.SearchableLayer):
            c = choices[layer.name]
            input_width = sm.input_width_of(layer, choices) or layer.max_input_width
            depthwise = isinstance(layer, search_layers.SearchableDepthwiseConv2D)
            width = input_width if depthwise else c["width"]
            pruned, gridded = _sub_kernel(layer, c, input_width, sm.input_rows_of(layer, choices))
            kernel, bias = _fold(layer, gridded, width)
            plain = _plain_layer(layer, c, width)
            tensors[layer.name] = plain(x[0])
            weights[plain] = [kernel, bias]
            masks[layer.name] = (pruned != 0).astype(np.float32)
        else:  # pooling, dropout, a residual Add, ...: as they are
            tensors[layer.name] = layer.__class__.from_config(layer.get_config())(x if len(x) > 1 else x[0])
    x = tensors[supernet.layers[-1].name]
    model = keras.Model(inputs, x, name=name or supernet.name.replace("supernet", "stripped"))
    for plain, w in weights.items():
        plain.set_weights(w)
    return model, masks


def largest_child_template(supernet, calibration_images) -> bytes:
    """The int8 .tflite of `supernet`'s largest child (widest, largest kernel, dense, 8 bits): what `measure`
    narrows."""
    largest = {layer.name: {"width": layer.widths[-1], "kernel_size": layer.kernel_sizes[-1], "pattern": DENSE,
                            "sparsity": 0.0, "bits": 8} for layer in search_layers.searchable_layers(supernet)}
    plain, _ = strip(supernet, largest)
    return convert_to_int8(plain, calibration_images)
