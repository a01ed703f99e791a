"""Warm start: the supernet begins as a trained float backbone.

A search that starts from random weights spends its first epochs learning features
that a float model of the same backbone already has; one-shot NAS (OFA, BigNAS)
starts from the trained full network instead. Every searchable layer takes the
kernel (and bias) of the plain layer of the same name, and its BatchNorm takes the
parameters and statistics of the BatchNormalization that follows that plain layer,
so the largest child (widest, dense, 8 bits) computes the float model up to its
8-bit weight grid. A supernet that holds larger kernels than the float model (kernel sizes
(3, 5) on a 3x3 backbone) takes the float kernel in their centre, zeros around it
(`udc.space.kernel_sizes`): every kernel size then starts as the float model, and the
5x5 option learns its border from there.
"""

from udc.compat import keras
from udc.deploy.fold import kernel_of
from udc.errors import UdcError
from udc.space import searchable_layers
from udc.space.derive import LayerGraph
from udc.space.kernel_sizes import centred


def load_float_weights(supernet, float_model) -> None:
    """Copies the weights of `float_model` (the plain backbone) into `supernet`'s largest shape."""
    consumers = LayerGraph(float_model).consumers
    names = {layer.name for layer in float_model.layers}
    for layer in searchable_layers(supernet):
        if layer.name not in names:
            raise UdcError(f"the float model has no layer '{layer.name}' to warm-start the supernet from; "
                           "train the float model of the same backbone (udc-train)")
        plain = float_model.get_layer(layer.name)
        kernel = kernel_of(plain).numpy()
        if kernel.ndim == 4 and kernel.shape[:2] != tuple(layer.kernel.shape[:2]):
            if any(n > k or (k - n) % 2 for n, k in zip(kernel.shape[:2], layer.kernel.shape[:2])):
                raise UdcError(f"layer {layer.name}: the float model's {kernel.shape[0]}x{kernel.shape[1]} kernel "
                               f"does not fit in the centre of the supernet's {layer.kernel.shape[0]}x"
                               f"{layer.kernel.shape[1]}; make the largest of search.kernel_sizes at least the "
                               "backbone's kernel size")
            kernel = centred(kernel, int(layer.kernel.shape[0]))
        if tuple(kernel.shape) != tuple(layer.kernel.shape):
            raise UdcError(f"layer {layer.name}: the float model's kernel is {tuple(kernel_of(plain).shape)}, the "
                           f"supernet's {tuple(layer.kernel.shape)}; warm start needs search.max_widths to be "
                           "the backbone's widths")
        layer.kernel.assign(kernel)
        if layer.bias is not None:
            layer.bias.assign(plain.bias if plain.use_bias else keras.backend.zeros_like(layer.bias))
        if layer.bn is not None:
            following = [float_model.get_layer(n) for n in consumers.get(plain.name, [])]
            norms = [l for l in following if isinstance(l, keras.layers.BatchNormalization)]
            if len(norms) != 1:
                raise UdcError(f"layer {layer.name} of the float model is not followed by one BatchNormalization; "
                               "warm start copies it into the searchable layer's own BatchNorm")
            layer.bn.set_weights(norms[0].get_weights())
