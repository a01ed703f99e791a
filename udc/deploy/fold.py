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
from udc.space.derive import LayerGraph

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


def fold_batch_norm(model, name=None):
    """A copy of a model with every Conv/Dense -> BatchNorm -> ReLU run made one layer (`LayerGraph.absorbed_run`:
    the BatchNorm and ReLU that alone take the run's output); every other layer, a residual Add included, is
    copied with its weights.

    A run without BatchNorm or without ReLU folds what it has; a layer that already has
    a non-linear activation keeps a following BatchNorm separate.
    """
    graph = LayerGraph(model)
    first = model.layers[0]
    inputs = keras.Input(shape=model.input_shape[1:], name=first.name)
    tensors, weights, absorbed = {first.name: inputs}, {}, {}
    for layer in model.layers[1:]:
        if layer.name in absorbed:
            tensors[layer.name] = tensors[absorbed[layer.name]]
            continue
        x = [tensors[source] for source in graph.inbound[layer.name]]
        x = x if len(x) > 1 else x[0]
        if not isinstance(layer, WEIGHT_LAYERS) or layer.get_config()["activation"] != "linear":
            copy = layer.__class__.from_config(layer.get_config())
            tensors[layer.name] = copy(x)
            weights[copy] = layer.get_weights()
            continue
        if isinstance(layer, keras.layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
            raise UdcError(f"folding supports depth_multiplier 1; {layer.name} has {layer.depth_multiplier}")
        kernel = kernel_of(layer).numpy()
        width = kernel.shape[output_channel_axis(layer)]
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(width, np.float32)
        bn, relu = graph.absorbed_run(layer)
        if bn is not None:
            kernel, bias = fold_into(kernel, bias, batch_norm_params(bn), output_channel_axis(layer))
        for plain in (bn, relu):
            if plain is not None:
                absorbed[plain.name] = layer.name
        folded = layer.__class__.from_config({**layer.get_config(), "use_bias": True,
                                              "activation": "relu" if relu is not None else "linear"})
        tensors[layer.name] = folded(x)
        weights[folded] = [kernel, bias]
    result = keras.Model(inputs, tensors[model.layers[-1].name], name=name or f"{model.name}_folded")
    for layer, w in weights.items():
        layer.set_weights(w)
    return result
