"""Structured filter pruning: a trained chain model with fewer filters per convolution, those of
largest L1 norm kept.

The baseline of hardware-dimension-aware pruning (`udc.workflows.baselines`, the `filters_*`
recipes): the same pruning to widths that are multiples of the target's channel alignment and to
the widths a plain fraction gives. An NPU computes channels in blocks of its array, so a width one
channel past a block costs a whole extra pass (benchmarks/hardware/channel_staircase.md:
Ethos-U55-128, a 3x3 convolution at 8 outputs 5,149 cycles, at 9 outputs 8,376).
"""

import numpy as np

from udc.compat import keras
from udc.errors import UdcError

# Layers that pass channels through unchanged and hold no weights.
_PASS_THROUGH = (keras.layers.InputLayer, keras.layers.ReLU, keras.layers.Activation, keras.layers.Dropout,
                 keras.layers.GlobalAveragePooling2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def pruned_widths(model, fraction: float, alignment: int | None = None) -> dict:
    """{conv name: filters to keep}: `fraction` of each Conv2D's filters, rounded; with `alignment`,
    the nearest multiple of it instead (at least one, at most the layer's filters)."""
    if not 0 < fraction <= 1:
        raise UdcError(f"the fraction of filters to keep must be in (0, 1], got {fraction}")
    widths = {}
    for layer in model.layers:
        if type(layer) is keras.layers.Conv2D:
            filters = layer.filters
            width = max(1, round(fraction * filters))
            if alignment:
                width = min(max(alignment, alignment * round(width / alignment)), filters)
            widths[layer.name] = width
    return widths


def _check_chain(model):
    """Each layer must take the previous one's output, as read from the model's own config
    (a layer's inbound nodes also list the other models it was called in, e.g. after strip_pruning)."""
    config = model.get_config()["layers"]
    for previous, layer in zip(config, config[1:]):
        inputs = [entry[0] for node in layer.get("inbound_nodes", [[[previous["name"]]]]) for entry in node]
        if inputs != [previous["name"]]:
            raise UdcError(f"filter pruning handles chains of layers; layer {layer['name']} takes {inputs}")


def prune_filters(model, widths: dict):
    """A copy of chain `model` whose Conv2D layer `name` keeps the `widths[name]` filters of largest L1
    norm, and whose layers after it (BatchNorm, depthwise convolutions, the next convolution's or
    Dense layer's input) keep the matching channels. Same names, same weights otherwise."""
    _check_chain(model)
    unknown = set(widths) - {layer.name for layer in model.layers if type(layer) is keras.layers.Conv2D}
    if unknown:
        raise UdcError(f"no Conv2D layer named {', '.join(sorted(unknown))} to prune in {model.name}")
    weights, kept = {}, None  # kept: the indices of the channels flowing out of the last layer (None: all)
    for layer in model.layers:
        values = layer.get_weights()
        if type(layer) is keras.layers.Conv2D:
            kernel = values[0] if kept is None else values[0][:, :, kept, :]
            kept = None
            if layer.name in widths:
                norms = np.abs(kernel).sum(axis=(0, 1, 2))
                kept = np.sort(np.argsort(-norms, kind="stable")[:widths[layer.name]])
                kernel = kernel[..., kept]
            weights[layer.name] = [kernel] + [b if kept is None else b[kept] for b in values[1:]]
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            if kept is not None and layer.depth_multiplier != 1:
                raise UdcError(f"{layer.name}: a depthwise layer after a pruned one needs depth_multiplier 1")
            weights[layer.name] = [v if kept is None else (v[:, :, kept, :] if v.ndim == 4 else v[kept]) for v in values]
        elif isinstance(layer, keras.layers.BatchNormalization):
            weights[layer.name] = [v if kept is None else v[kept] for v in values]
        elif isinstance(layer, keras.layers.Dense):
            weights[layer.name] = [values[0] if kept is None else values[0][kept, :]] + values[1:]
            kept = None
        elif isinstance(layer, _PASS_THROUGH):
            continue
        else:
            raise UdcError(f"filter pruning does not know layer {layer.name} ({type(layer).__name__}); "
                           "prune a chain of Conv2D, DepthwiseConv2D, BatchNormalization, Dense and activations")

    def narrower(layer):
        config = layer.get_config()
        if layer.name in widths:
            config["filters"] = widths[layer.name]
        return layer.__class__.from_config(config)

    pruned = keras.models.clone_model(model, clone_function=narrower)
    for name, values in weights.items():
        pruned.get_layer(name).set_weights(values)
    return pruned
