"""A supernet derived from a plain tf_keras model: its Conv2D, DepthwiseConv2D and Dense layers become searchable.

A backbone is written once, as the plain model it trains and exports as (`udc.models`); `derive_supernet`
walks that model's graph and replaces each weight layer by the searchable layer of its kind, of the same
name and largest shape:

* a BatchNormalization that alone takes a weight layer's output, and a plain ReLU after either, move inside
  the searchable layer (its width mask must come after them, and tfmot needs the activation inside the layer,
  see docs/stack_facts.md); the plain layers keep their names, so warm start (`udc.search.warm_start`) finds
  the float kernel and its BatchNorm by the searchable layer's name;
* each convolution and each Dense chooses its width among `SearchOptions.widths_for` its own, except the
  layer whose output is the model's (the classifier keeps its classes) and a layer whose output is flattened
  from a map larger than 1x1 (the Dense after it would read its channels at every pixel): these keep their
  width and are said so;
* each square `same`-padded convolution chooses its kernel size among `SearchOptions.kernel_sizes_for` (those its
  stride allows); a non-square kernel (DS-CNN's 10x4) or a `valid` one keeps its own;
* patterns follow `SearchOptions.patterns_for` the layer's kind;
* every other layer (pooling, dropout, flatten, padding) is copied as it is: zeros of masked channels stay zero
  through it, so a layer after it reads its input width from the searchable layer before it (`input_from`);
* the weight layers whose outputs a residual Add joins form a **width group**: they keep the same channels, so
  the first holds the group's width choice and the others share it (`width_from`, see `udc.space.layers`); a
  group the model's input joins keeps the input's channels;
* the branches a channel Concatenate joins keep choosing their widths: the layer after the join reads one
  input block per branch, the first (width) channels of each (`input_blocks`, `udc.space.layers`), and its input
  width is their sum. Branches of **equal** channels form one width group (through a depthwise layer, the layer
  that sets its channels), so they share one width choice; branches of different channels choose each their own
  (16 and 24 channels have different options, so no one choice fits both). The branches keep their widths when
  the model's input joins and when the joined tensor reaches a layer that reads its channels otherwise (an Add,
  another Concatenate, a depthwise layer, a Flatten of a map, the model's output); the layer after such a join
  reads all of its channels. The search says which layers keep their width (`udc.workflows.pipeline`).

A softmax on the output layer is dropped: udc trains and calibrates on logits, and the argmax is the same.
A layer udc cannot search or carry (a Conv2D with groups, a depth multiplier above 1, a Concatenate along another
axis than channels, an activation other than ReLU inside a weight layer) is refused with one line that names it and
what to do.
"""

from udc.compat import keras
from udc.errors import ConfigError
from udc.space.layers import SearchableConv2D, SearchableDense, SearchableDepthwiseConv2D, traced_pass
from udc.space.options import SearchOptions

WEIGHT_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
# Layers copied unchanged; each keeps channel c of its input in channel c of its output.
CARRIED_LAYERS = (keras.layers.GlobalAveragePooling2D, keras.layers.AveragePooling2D, keras.layers.MaxPooling2D,
                  keras.layers.Dropout, keras.layers.Flatten, keras.layers.ZeroPadding2D, keras.layers.InputLayer)


def inbound_layers(model) -> dict:
    """{layer name: names of the layers whose outputs it takes}, from the model's own config."""
    inbound = {}
    for layer in model.get_config()["layers"]:
        nodes = layer.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise ConfigError(f"layer {layer['name']} is called {len(nodes)} times; udc derives supernets from models "
                              "whose layers are each called once (give each use its own layer)")
        inbound[layer["name"]] = [entry[0] for node in nodes for entry in node]
    return inbound


def is_plain_relu(layer) -> bool:
    """A ReLU layer (or relu Activation) without a cap, slope or threshold: what a weight layer can hold inside."""
    if isinstance(layer, keras.layers.ReLU):
        c = layer.get_config()
        return c.get("max_value") is None and not c.get("negative_slope") and not c.get("threshold")
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "relu"


def _activation_of(layer, is_output: bool):
    activation = layer.get_config().get("activation", "linear")
    if activation in ("linear", "relu") or (activation == "softmax" and is_output):
        return None if activation != "relu" else "relu"
    raise ConfigError(f"layer {layer.name} has activation '{activation}'; udc searches weight layers with none or "
                      "ReLU (folded into the layer as the NPU runs it); use ReLU, or a linear layer then ReLU")


class LayerGraph:
    """A plain model's layers as a graph: what each takes and gives, and the BatchNorm and ReLU that move inside a
    weight layer (`absorbed_run`; BatchNorm folding, `udc.deploy.fold`, follows the same rule)."""

    def __init__(self, model):
        self.model = model
        self.inbound = inbound_layers(model)
        self.consumers = {}
        for name, sources in self.inbound.items():
            for source in sources:
                self.consumers.setdefault(source, []).append(name)
        self.output_layers = {layer.name for layer in model.layers
                              if any(out is t for t in model.outputs for out in _outputs_of(layer))}

    def only_consumer(self, name):
        """The layer that alone takes `name`'s output (None if several or none, or if it is a model output)."""
        consumers = self.consumers.get(name, [])
        if len(consumers) != 1 or name in self.output_layers:
            return None
        return self.model.get_layer(consumers[0])

    def absorbed_run(self, layer):
        """(BatchNormalization or None, ReLU or None) that move inside weight layer `layer`."""
        bn = relu = None
        after = self.only_consumer(layer.name)
        if isinstance(after, keras.layers.BatchNormalization) and _activation_of(layer, False) is None:
            bn, after = after, self.only_consumer(after.name)
        if isinstance(after, keras.layers.ReLU | keras.layers.Activation) and is_plain_relu(after) \
                and _activation_of(layer, False) is None:
            relu = after
        return bn, relu


def _outputs_of(layer):
    out = layer.output
    return out if isinstance(out, (list, tuple)) else [out]


def derive_supernet(model, options: SearchOptions, name=None):
    """The supernet of plain functional tf_keras `model` (one input, one output) under `options`; see the module
    doc. Its searchable layers have the names of the plain weight layers."""
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"model {getattr(model, 'name', model)!r} is not a functional tf_keras model with one input "
                          "and one output; udc derives supernets from such models")
    walk = LayerGraph(model)
    plan = _Plan(model, walk)
    inputs = keras.Input(shape=model.input_shape[1:], name=model.layers[0].name)
    tensors = {model.layers[0].name: inputs}
    searchable = {}  # weight layer name -> its searchable layer
    with traced_pass("soft"):  # building infers shapes only: both branches took a second per layer (MobileNet: 25 s)
        _build(model, walk, plan, options, tensors, searchable)
    return keras.Model(inputs, tensors[model.layers[-1].name], name=name or f"{model.name}_supernet")


def _build(model, walk, plan, options, tensors, searchable) -> None:
    """Calls each layer of the supernet on its inputs' tensors, in the plain model's order."""
    for layer in model.layers[1:]:
        if layer.name in plan.absorbed:
            tensors[layer.name] = tensors[plan.absorbed[layer.name]]
            continue
        sources = walk.inbound[layer.name]
        x = [tensors[source] for source in sources]
        if isinstance(layer, WEIGHT_LAYERS):
            bn, relu = plan.runs[layer.name]
            leader = plan.leader.get(layer.name, layer.name)
            searchable[layer.name] = _searchable(
                layer, bn, relu, searchable.get(plan.producer[sources[0]]), options,
                is_output=(relu or bn or layer).name in walk.output_layers, keeps_width=layer.name in plan.fixed,
                width_from=None if leader == layer.name else searchable[leader],
                input_blocks=[(searchable[p], c) for p, c in plan.blocks.get(sources[0], ())])
            tensors[layer.name] = searchable[layer.name](x[0])
        else:
            tensors[layer.name] = layer.__class__.from_config(layer.get_config())(x if len(x) > 1 else x[0])


class _Plan:
    """What the walk finds before it builds: each weight layer's BatchNorm and ReLU (`runs`, `absorbed_run`), the
    plain layers that move inside a weight layer (`absorbed`), the weight layer whose channels each layer's output
    carries (`producer`; None: the model input's, or none after a Flatten or a held Concatenate) or, after a
    Concatenate, the (weight layer, channels) of each of its blocks (`blocks`), the width groups (`leader`: a member
    of a group of several -> its first member) and the weight layers that keep their width (`fixed`).

    A Concatenate's branches keep their width choices (equal ones in one width group), unless its output reaches a
    layer that cannot read blocks (an Add, another Concatenate, a depthwise layer, a Flatten of a map, the model's
    output): then the walk starts again with it held."""

    def __init__(self, model, walk):
        held = set()  # Concatenates whose branches keep their widths
        while True:
            try:
                self._walk(model, walk, held)
                return
            except _BlocksNotReadable as reached:
                held.add(reached.concatenate)

    def _walk(self, model, walk, held):
        self.absorbed, self.producer, self.runs, self.blocks = {}, {model.layers[0].name: None}, {}, {}
        self._parent, order, fixed = {}, [], set()
        joined_by = {}  # a layer whose output carries concatenated blocks -> the Concatenate that made them
        for layer in model.layers[1:]:
            if layer.name in self.absorbed:
                self.producer[layer.name] = self.producer[self.absorbed[layer.name]]
                continue
            sources = walk.inbound[layer.name]
            joined = [self.producer[source] for source in sources]
            blocks = [joined_by[source] for source in sources if source in joined_by]
            if blocks and (isinstance(layer, _READ_OTHER_THAN_BLOCKS) or _flattens_a_map(layer)):
                raise _BlocksNotReadable(blocks[0])
            if isinstance(layer, keras.layers.Add):
                members = [m for m in joined if m is not None]
                _check_joined(model, layer, members)
                for member in members[1:]:
                    self._parent[self._root(member)] = self._root(members[0])
                if len(members) < len(joined):  # the model's input joins: the group keeps the input's channels
                    fixed.update(members)
                self.producer[layer.name] = members[0] if members else None
            elif isinstance(layer, keras.layers.Concatenate):
                _check_concatenated(layer)
                owners = [None if m is None else self._width_owner(model, walk, m) for m in joined]
                channels = [int(shape[-1]) for shape in layer.input_shape]
                if layer.name not in held and None not in owners:
                    if len(set(channels)) == 1:  # equal branches: one width choice
                        for owner in owners[1:]:
                            self._parent[self._root(owner)] = self._root(owners[0])
                    self.producer[layer.name], self.blocks[layer.name] = joined[0], list(zip(joined, channels))
                    joined_by[layer.name] = layer.name
                else:  # the next layer reads every channel of the joined tensor: each branch keeps its width
                    fixed.update(owner for owner in owners if owner is not None)
                    self.producer[layer.name] = None
            elif len(joined) != 1:
                raise ConfigError(f"layer {layer.name} ({type(layer).__name__}) joins {len(joined)} branches; udc "
                                  "joins branches with Add (one width group) or Concatenate only; use one of those")
            elif isinstance(layer, WEIGHT_LAYERS):
                self.runs[layer.name] = walk.absorbed_run(layer)
                for plain in self.runs[layer.name]:
                    if plain is not None:
                        self.absorbed[plain.name] = layer.name
                self.producer[layer.name] = layer.name
                order.append(layer.name)
            elif isinstance(layer, CARRIED_LAYERS) or is_plain_relu(layer):
                if _flattens_a_map(layer) and joined[0] is not None:
                    fixed.add(self._width_owner(model, walk, joined[0]))  # the Dense after it reads each channel
                    fixed.discard(None)  # at every pixel
                self.producer[layer.name] = None if _flattens_a_map(layer) else joined[0]
                if blocks:  # channel c stays channel c: the blocks stay
                    self.blocks[layer.name], joined_by[layer.name] = self.blocks[sources[0]], blocks[0]
            else:
                raise ConfigError(f"layer {layer.name} ({type(layer).__name__}) is not one udc can search or carry; "
                                  "udc searches Conv2D, DepthwiseConv2D and Dense (with BatchNormalization and ReLU), "
                                  "joins branches with Add or Concatenate and carries "
                                  f"{', '.join(c.__name__ for c in CARRIED_LAYERS[:-1])}; replace it")
        reached = sorted(walk.output_layers & set(joined_by))
        if reached:  # the model's output keeps its channels
            raise _BlocksNotReadable(joined_by[reached[0]])
        groups = {}
        for name in order:
            groups.setdefault(self._root(name), []).append(name)
        fixed_groups = {self._root(name) for name in fixed}
        self.leader = {name: members[0] for members in groups.values() if len(members) > 1 for name in members}
        self.fixed = {name for name in order if self._root(name) in fixed_groups}

    def _width_owner(self, model, walk, name):
        """The weight layer whose width choice sets weight layer `name`'s channels: itself, or through depthwise
        layers (whose width is their input's) the one before them (None: the model input)."""
        while name is not None and isinstance(model.get_layer(name), keras.layers.DepthwiseConv2D):
            name = self.producer[walk.inbound[name][0]]
        return name

    def _root(self, name):
        while self._parent.get(name, name) != name:
            name = self._parent[name]
        return name


# Layers that read a tensor's channels other than as blocks each live up to one width (`_Plan`; so does a
# Flatten of a map, whose Dense reads each channel at every pixel).
_READ_OTHER_THAN_BLOCKS = (keras.layers.Add, keras.layers.Concatenate, keras.layers.DepthwiseConv2D)


class _BlocksNotReadable(Exception):
    """The output of `concatenate`, joined as blocks of one width group, reaches a layer that reads channels
    otherwise."""

    def __init__(self, concatenate):
        super().__init__(concatenate)
        self.concatenate = concatenate


def _check_joined(model, add, members):
    for member in members:
        if isinstance(model.get_layer(member), keras.layers.DepthwiseConv2D):
            raise ConfigError(f"the Add {add.name} joins the output of depthwise layer {member}, whose width is its "
                              "input's; put a 1x1 Conv2D after it, or join before it")


def _check_concatenated(layer):
    if layer.axis not in (-1, len(layer.output_shape) - 1):
        raise ConfigError(f"the Concatenate {layer.name} joins along axis {layer.axis}; udc joins branches along "
                          "channels (axis=-1) only; concatenate the channels, or reshape after the join")


def _flattens_a_map(layer) -> bool:
    """Whether `layer` is a Flatten of a map larger than 1x1 (its output's channels no longer follow its input's)."""
    return isinstance(layer, keras.layers.Flatten) and len(layer.input_shape) == 4 \
        and layer.input_shape[1] * layer.input_shape[2] > 1


def _searchable(layer, bn, relu, input_from, options: SearchOptions, is_output: bool, keeps_width: bool, width_from,
                input_blocks):
    """The searchable layer that replaces weight layer `layer` (with `bn` and `relu` inside)."""
    activation = "relu" if relu is not None else _activation_of(layer, is_output)
    common = dict(sparsities=options.sparsities, bits=options.bits, alignment=options.alignment,
                  batch_norm=bn is not None, activation=activation, input_from=input_from, name=layer.name,
                  width_from=width_from, input_blocks=input_blocks,
                  use_bias=False if bn is not None else layer.get_config().get("use_bias", True))
    if bn is not None:
        common["bn_momentum"] = bn.momentum
    if isinstance(layer, keras.layers.Dense):
        units = layer.units
        widths = [units] if (is_output or keeps_width) else (None if options.widths is None
                                                           else options.widths_for(units))
        return SearchableDense(units, widths=widths, patterns=options.patterns_for("dense"), **common)
    config = layer.get_config()
    if config.get("dilation_rate", (1, 1)) not in ((1, 1), [1, 1]):
        raise ConfigError(f"layer {layer.name} is dilated; udc searches undilated convolutions; remove the dilation")
    spatial = dict(strides=tuple(layer.strides), padding=layer.padding,
                   kernel_sizes=_kernel_sizes(layer, options))
    kernel = tuple(layer.kernel_size) if spatial["kernel_sizes"] is None else spatial["kernel_sizes"][-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if layer.depth_multiplier != 1:
            raise ConfigError(f"depthwise layer {layer.name} has depth multiplier {layer.depth_multiplier}; udc "
                              "searches depth multiplier 1; follow it with a 1x1 Conv2D instead")
        return SearchableDepthwiseConv2D(kernel, patterns=options.patterns_for("depthwise"), **spatial, **common)
    if config.get("groups", 1) != 1:
        raise ConfigError(f"layer {layer.name} is a grouped convolution ({config['groups']} groups); udc searches "
                          "Conv2D with groups=1 and DepthwiseConv2D; rewrite it as those")
    widths = [layer.filters] if (is_output or keeps_width) else (None if options.widths is None
                                                               else options.widths_for(layer.filters))
    return SearchableConv2D(layer.filters, kernel, widths=widths, patterns=options.patterns_for("conv"),
                            **spatial, **common)


def _kernel_sizes(layer, options: SearchOptions):
    """The kernel sizes a plain convolution chooses from (None: its own kernel only: a non-square one, or one with
    `valid` padding, whose output size changes with the kernel size)."""
    height, width = layer.kernel_size
    if options.kernel_sizes is None or height != width or layer.padding != "same":
        return None
    return options.kernel_sizes_for(height, tuple(layer.input_shape[1:3]), tuple(layer.strides), layer.padding)
