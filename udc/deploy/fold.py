"""Fold inference BatchNorm and a following ReLU into the conv or dense layer before it.

udc's grid QAT (`udc.deploy.finetune`) needs the activation inside the layer: tfmot's layout
transform drops a custom QuantizeConfig on a Conv followed by a separate ReLU
(docs/stack_facts.md). Folding also gives the kernel the per-channel scale the int8 export stores,
so a b-bit grid set on the folded kernel is the grid the .tflite holds. Zeros stay zeros
(the BatchNorm factor is per output channel), so a pruned kernel keeps its sparsity.
"""

import numpy as np

from udc.compat import keras
from udc.errors import UdcError

# The layers with a kernel that folding, grid QAT and the int8 export treat as weights.
WEIGHT_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def fold_into(kernel, bias, batch_norm: dict, channel_axis: int):
    """(kernel, bias) of `kernel * x + bias` followed by inference BatchNorm.

    `batch_norm` holds per-output-channel arrays gamma, beta, mean, variance and the
    float epsilon; `channel_axis` is the kernel's output-channel axis.
    """
    factor = batch_norm["gamma"] / np.sqrt(batch_norm["variance"] + batch_norm["epsilon"])
    shape = [1] * kernel.ndim
    shape[channel_axis] = factor.size
    folded_kernel = kernel * factor.reshape(shape)
    folded_bias = batch_norm["beta"] + (bias - batch_norm["mean"]) * factor
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def batch_norm_params(bn) -> dict:
    """The inference parameters of a keras BatchNormalization layer, for `fold_into`."""
    size = bn.moving_mean.shape[0]
    return {"gamma": bn.gamma.numpy() if bn.scale else np.ones(size, np.float32),
            "beta": bn.beta.numpy() if bn.center else np.zeros(size, np.float32),
            "mean": bn.moving_mean.numpy(), "variance": bn.moving_variance.numpy(), "epsilon": bn.epsilon}


def kernel_of(layer):
    """The kernel variable of a plain weight layer (a DepthwiseConv2D names it `depthwise_kernel`)."""
    return layer.depthwise_kernel if isinstance(layer, keras.layers.DepthwiseConv2D) else layer.kernel


def output_channel_axis(layer) -> int:
    return 2 if isinstance(layer, keras.layers.DepthwiseConv2D) else -1


def _is_plain_relu(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        c = layer.get_config()
        return c.get("max_value") is None and not c.get("negative_slope") and not c.get("threshold")
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "relu"


def check_chain(model):
    """Each layer must take the previous one's output, as read from the model's own config
    (a layer's inbound nodes also list the other models it was called in, e.g. after strip_pruning)."""
    config = model.get_config()["layers"]
    for previous, layer in zip(config, config[1:]):
        inputs = [entry[0] for node in layer.get("inbound_nodes", [[[previous["name"]]]]) for entry in node]
        if inputs != [previous["name"]]:
            raise UdcError(f"folding handles chains of layers; layer {layer['name']} takes {inputs}")


def fold_batch_norm(model, name=None):
    """A copy of a chain model with every Conv/Dense -> BatchNorm -> ReLU run made one layer.

    A run without BatchNorm or without ReLU folds what it has; a layer that already has
    a non-linear activation keeps a following BatchNorm separate.
    """
    check_chain(model)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    inputs = keras.Input(shape=model.input_shape[1:], name=model.input_names[0])
    x, weights, i = inputs, {}, 0
    while i < len(layers):
        layer = layers[i]
        i += 1
        if not isinstance(layer, WEIGHT_LAYERS) or layer.get_config()["activation"] != "linear":
            copy = layer.__class__.from_config(layer.get_config())
            x = copy(x)
            weights[copy] = layer.get_weights()
            continue
        if isinstance(layer, keras.layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
            raise UdcError(f"folding supports depth_multiplier 1; {layer.name} has {layer.depth_multiplier}")
        kernel = kernel_of(layer).numpy()
        width = kernel.shape[output_channel_axis(layer)]
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(width, np.float32)
        if i < len(layers) and isinstance(layers[i], keras.layers.BatchNormalization):
            kernel, bias = fold_into(kernel, bias, batch_norm_params(layers[i]), output_channel_axis(layer))
            i += 1
        activation = "linear"
        if i < len(layers) and _is_plain_relu(layers[i]):
            activation = "relu"
            i += 1
        folded = layer.__class__.from_config({**layer.get_config(), "use_bias": True, "activation": activation})
        x = folded(x)
        weights[folded] = [kernel, bias]
    result = keras.Model(inputs, x, name=name or f"{model.name}_folded")
    for layer, w in weights.items():
        layer.set_weights(w)
    return result
