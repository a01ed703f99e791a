"""Searchable layers: one layer holds the largest shape and learns its width, kernel size, weight pattern, sparsity
and bits.

`SearchableConv2D`, `SearchableDepthwiseConv2D` and `SearchableDense` (tf_keras) hold
the kernel of the largest option and one learnable logit vector per choice:

* width (output channels; not on depthwise, whose width is its input's),
* kernel size (convolutions: the centre of the largest kernel, `udc.space.kernel_sizes`),
* N:M weight pattern (dense or e.g. 2:4 along the input channels, `udc.space.patterns`),
* unstructured magnitude sparsity rate,
* weight bit-width of the symmetric grid (`udc.space.quantizers`).

The choices are `udc.space.dimensions.DIMENSIONS` (each one's options, logits, order and,
for sparsity and bits, its kernel transform, exact and relaxed); the layer applies them. How the
choices are made differentiable (the pick, and why):

* **Gumbel-softmax** over each logit vector, temperature `T` annealed from high to low
  (`temperature_at`, `TemperatureAnnealing`): in training each step draws
  `g = softmax((logits + Gumbel noise) / T)`, a relaxed one-hot sample. It is the
  FBNetV2 / DNAS recipe: unbiased-enough gradients to every option, cheap, and the
  noise keeps exploring while `T` is high. In inference (not hard) `g = softmax(logits)`,
  and so in training passes within `inference_weights()` (BatchNorm recalibration).
  Within `straight_through_samples()` g is the one-hot of the sample in the forward pass
  and keeps the relaxed sample's gradient (the search's `search.relaxation`).
* **Width**: FBNetV2 channel masks. Option i owns the mask `[c < width_i]`; the layer's
  output (after its own BatchNorm and activation, so that masked channels are exactly 0
  and the next layer sees only the chosen width) is multiplied by `sum_i g_i * mask_i`.
* **Kernel size**: centre masks, mixed like the others: `sum_k g_k * (w * centre_k)`; an exact
  pass cuts the chosen centre and convolves with it (same padding), what strip builds.
* **Pattern**: N:M masks, mixed like sparsity masks: `sum_j g_j * (w * mask_j)` with mask_j
  keeping the N largest |w| of each group of M input-channel weights; applied before
  sparsity, which then prunes among the kept weights.
* **Sparsity**: magnitude masks. Rate r zeroes the `ceil(r * n)` smallest |w| of the
  whole kernel; the kernel becomes `sum_j g_j * (w * mask_j)`. Gradients reach the
  surviving weights (the threshold is not differentiated). In hard mode the rule is the
  one of the exported model (and of `size_model.layer_codes`): the kernel is first cut to
  the chosen (input width, output width) sub-kernel, and the `ceil(r * n_sub)` smallest
  |w| *of that sub-kernel* are zeroed; the grid scale is then taken over the sub-kernel
  too, so a hard supernet computes exactly what `udc.deploy.strip` builds.
* **Bits**: straight-through rounding to each grid, mixed: `sum_k g_k * grid_k(w_sparse)`
  (per output channel for convolutions, per tensor for Dense, as exported).
* **hard mode** (`set_hard(model, True)` or `layer.hard.assign(1.)`): every g becomes the
  one-hot of the **decoded** option (`decoded_index`), so the layer computes exactly the
  chosen sub-network (what strip + export will produce, up to the final int8 rounding of
  activations).
* **Decoding** a distribution over options to one option takes its **median** along the
  option order (narrow to wide, dense to sparse, few to many bits), not its argmax. Why:
  the relaxations are nested. The width mixture keeps channel c with weight P(width > c),
  which is at least 1/2 exactly for the channels below the median width; a weight pruned
  at one rate is pruned at every higher rate, so the sparsity mixture keeps it with weight
  at least 1/2 exactly when the median rate keeps it. The median child is the hard network
  nearest to what the mixture computes, while the argmax of a 16-option width
  distribution can sit far from its mass. Measured at the end of a Fashion-MNIST search
  (udc's supernet, 1 search epoch at dual learning rate 4, before any fit to the budget):
  at 8 KiB the argmax child had 42.5 % validation accuracy, the median child 73.4 %, the
  mixture itself 73.6 %; at 16 KiB 58.0 %, 86.5 % and 84.9 %. The median is close to the
  mixture only where the distribution has concentrated: with other seeds it sat 2 to 19
  points below it after one search epoch (benchmarks/fashion_mnist/seeds.md).
* **child mode** (`udc.space.children`): like hard mode, but the option indices
  come from the non-trainable `width_index`, `kernel_size_index`, `pattern_index`, `sparsity_index` and
  `bits_index`, so one
  training step can run the largest, the smallest and sampled sub-networks in turn (the
  sandwich rule).
* An exact pass (hard or child mode) runs each layer at its **own widths**: the chosen
  sub-kernel on the input's first (input width) channels, the output zero-padded back to
  the full width (the padded channels are masked after BatchNorm, as before). Why: it
  computes what the full-width operation on the zero-padded sub-kernel computes, but a
  child costs what its widths cost; at full width with masked channels the smallest child
  cost as much as the largest, a quarter of the sandwich step each.

`hard` and `temperature` are non-trainable variables, so switching them never retraces
a compiled `fit`. `choice_probabilities()` gives softmax(logits) (one-hot in hard mode),
the distribution the size model (`udc.costs.size_model`) takes the expectation over;
`hard_choice()` gives the decoded choice as plain numbers (the arch spec of this layer).

`input_from` names the searchable layer whose width sets this layer's input channels:
the size model uses its width distribution for the input side, and a depthwise layer
also multiplies its output by that layer's current width mask (the same Gumbel sample,
taken in the same forward pass), because its BatchNorm would otherwise revive channels
the previous layer switched off.

A layer holds no target-specific state: the size model's tables live in
`udc.costs.size_model.CodecTables`, the cycle tables in `udc.costs.cycle_model`.
**Width groups**: layers whose outputs a residual Add joins must keep the same channels. Each member
but the first (`width_from=` the leader) holds the leader's width logits and child index, the same
variables, so the group has one width choice: hard, child and decoded choices agree, and the search,
selection and strip see one option (`WIDTH.searchable` is False for the others). In a relaxed pass each
member draws its own Gumbel sample from that one distribution (the Add sums branches masked alike in
expectation); the exact passes, which the sandwich rule trains and strip builds, share the index.

**Concatenated branches**: the input of a layer after a channel Concatenate is `input_blocks`, one block per
branch (the searchable layer that produces it and its channels), each live up to its branch's chosen width
(branches of one width group choose together, the others each their own); the exact pass and the codec read the
live rows only (`input_rows`), so a child costs what its widths cost, and the input width is the blocks' sum.

`input_from`, `width_from` and `input_blocks` are Python links, not part of `get_config`: a model rebuilt from
config must set them again.

Each layer may contain its BatchNorm and activation (`batch_norm=True`,
`activation="relu"`): the mask must come after them, and keeping the activation inside
the layer is also what tfmot needs later (see docs/stack_facts.md).
"""

import contextlib
import itertools

import numpy as np

from udc.compat import keras, tf
from udc.errors import ConfigError
from udc.space import options as opts
from udc.space.dimensions import DIMENSIONS, KERNEL_DIMENSIONS, KERNEL_SIZE, WIDTH, pruned_count
from udc.space.kernel_sizes import crop_np, crops_exactly

DEFAULT_START_TEMPERATURE = 5.0
DEFAULT_END_TEMPERATURE = 0.5


_NOISE = {"generator": None}


def use_noise_generator(generator) -> None:
    """Draw the Gumbel noise from `generator` (a tf.random.Generator; None: tf.random's global state).

    The search reseeds its generator every epoch, so a resumed run draws the same noise
    as an uninterrupted one.
    """
    _NOISE["generator"] = generator


def gumbel_noise(shape):
    """Gumbel(0, 1) noise from the generator set by `use_noise_generator`."""
    generator = _NOISE["generator"]
    if generator is not None:
        u = generator.uniform(shape, minval=1e-6, maxval=1.0 - 1e-6)
    else:
        u = tf.random.uniform(shape, minval=1e-6, maxval=1.0 - 1e-6)
    return -tf.math.log(-tf.math.log(u))


# 1: a training pass draws relaxed samples; 0: it weighs the options as inference does. A variable,
# not a Python flag, so that a traced training pass follows it without retracing.
_SAMPLING = tf.Variable(1.0, trainable=False, name="gumbel_sampling")


@contextlib.contextmanager
def inference_weights():
    """Within the block, training passes of soft layers weigh their options by softmax(logits), as
    inference does, instead of drawing Gumbel samples.

    What BatchNorm recalibration of the soft mixture needs: it must run in training mode to
    gather batch statistics, but the statistics must be those of the noiseless mixture that
    inference then evaluates, not of noisy samples at the current temperature.
    """
    with _assigned(_SAMPLING, 0.0):
        yield


# 1: a training pass's sample is the one-hot of its relaxed sample, with the relaxed sample's
# gradient (straight-through); 0: the relaxed sample itself. A variable for the same reason.
_STRAIGHT_THROUGH = tf.Variable(0.0, trainable=False, name="straight_through_sampling")


@contextlib.contextmanager
def straight_through_samples(on: bool = True):
    """Within the block (if `on`), training passes of soft layers draw hard samples: each choice is the one-hot
    of its Gumbel-softmax sample (an exact draw from softmax(logits), whatever the temperature), and
    the logits get the relaxed sample's gradient (straight-through, as in GDAS).

    What a search that must rank children needs: the forward pass is one sampled child, so the
    task loss the logits follow is a child's, not that of a mixture of fractional widths, which at
    small budgets was worth more than any whole child of its size.
    """
    with _assigned(_STRAIGHT_THROUGH, float(on)):
        yield


# What a forward pass of a searchable layer traces: None, both its soft and its exact branch under a
# tf.cond on its `hard` and `child` variables (decided at run time); "soft" or "exact", that branch only.
_TRACED_PASS = None


@contextlib.contextmanager
def traced_pass(kind: str):
    """Within the block, searchable layers trace only their `kind` ('soft' or 'exact') forward pass,
    not both branches of a tf.cond. For a caller that sets the mode in the same traced function and
    runs the pass in it (`child` or `hard` set for 'exact', neither for 'soft'): the sandwich step
    traces four passes of every layer, and building and differentiating both branches of each took
    about half of its first call, 50 s on the digits supernet (2 cores)."""
    global _TRACED_PASS
    before, _TRACED_PASS = _TRACED_PASS, kind
    try:
        yield
    finally:
        _TRACED_PASS = before


@contextlib.contextmanager
def _assigned(variable, value):
    """`variable` holds `value` within the block and its value before after it."""
    before = variable.numpy()
    variable.assign(value)
    try:
        yield
    finally:
        variable.assign(before)


def _gumbel_softmax(logits, temperature):
    sample = tf.nn.softmax((logits + gumbel_noise(tf.shape(logits))) / temperature)
    one_hot = tf.one_hot(tf.argmax(sample), tf.shape(logits)[0], dtype=sample.dtype)
    sample += _STRAIGHT_THROUGH * tf.stop_gradient(one_hot - sample)
    return _SAMPLING * sample + (1.0 - _SAMPLING) * tf.nn.softmax(logits)


def decoded_index(logits):
    """The option a choice's logits decode to: the median of softmax(logits) along the option order
    (the first option whose cumulative probability reaches 1/2; see the module doc for why)."""
    cumulative = tf.cumsum(tf.nn.softmax(logits))
    return tf.reduce_sum(tf.cast(cumulative < 0.5, tf.int64))


class _Ref:
    """Holds a layer without Keras tracking it (a tracked layer would become a sublayer)."""

    def __init__(self, obj):
        self.obj = obj


class SearchableLayer(keras.layers.Layer):
    """Shared choice machinery; subclasses define the kernel and the operation."""

    channel_axis = -1  # grid scale axis of the kernel (None: per tensor)
    in_axis = -2  # input-channel axis of the kernel
    has_width_choice = True
    kernel_sizes = (1,)  # a Dense layer's; convolutions hold their own

    def __init__(self, widths=None, sparsities=opts.DEFAULT_SPARSITIES, bits=opts.DEFAULT_BITS,
                 patterns=opts.DEFAULT_PATTERNS, alignment=opts.DEFAULT_ALIGNMENT, batch_norm=False, activation=None,
                 use_bias=None, bn_momentum=0.9, temperature=DEFAULT_START_TEMPERATURE, input_from=None, width_from=None,
                 input_blocks=(), kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.alignment = alignment
        self._widths_arg = None if widths is None else tuple(widths)
        self.sparsities = opts.sparsity_options(sparsities)
        self.bits = opts.bit_options(bits)
        self.patterns = opts.pattern_options(patterns)
        self.batch_norm = batch_norm
        self.activation = keras.activations.get(activation)
        self.use_bias = (not batch_norm) if use_bias is None else use_bias
        self.bn_momentum = bn_momentum
        self.initial_temperature = float(temperature)
        self._input_from = _Ref(input_from)  # not an attribute Keras would track as a sublayer
        self._width_from = _Ref(width_from)
        self._input_blocks = tuple((_Ref(source), int(channels)) for source, channels in input_blocks)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.last_width_mask = None

    @property
    def input_from(self):
        """The searchable layer whose width sets this layer's input channels (or None)."""
        return self._input_from.obj

    @input_from.setter
    def input_from(self, layer):
        self._input_from = _Ref(layer)

    @property
    def input_blocks(self) -> tuple:
        """((searchable layer producing it, channels), ...) of the branches a Concatenate joins into this layer's
        input, in order; () for an input that is not a join (see the module doc)."""
        return tuple((ref.obj, channels) for ref, channels in self._input_blocks)

    @property
    def width_from(self):
        """The leader of this layer's width group (None: the layer owns its width choice), see the module doc."""
        return self._width_from.obj

    @width_from.setter
    def width_from(self, layer):
        self._width_from = _Ref(layer)

    # --- subclasses ------------------------------------------------------------
    def _kernel_shape(self, input_shape):
        raise NotImplementedError

    def _apply(self, x, kernel):
        raise NotImplementedError

    def kernel_area(self, kernel_size=None) -> int:
        """Weights per (input, output) channel pair at `kernel_size` (default: the kernel held; 1 for Dense)."""
        return 1

    def centre(self, kernel: np.ndarray, kernel_size=None) -> np.ndarray:
        """A kernel of this layer's layout (numpy) cut to `kernel_size` (default: the kernel held, unchanged)."""
        return kernel

    @property
    def max_input_width(self) -> int:
        """The kernel's full input depth (the input width when no layer sets it)."""
        return int(self.kernel.shape[self.in_axis])

    @property
    def max_width(self) -> int:
        raise NotImplementedError

    def _block_offsets(self) -> np.ndarray:
        """The first kernel row of each input block."""
        return np.cumsum([0] + [channels for _, channels in self.input_blocks[:-1]])

    def input_rows(self, block_widths) -> np.ndarray:
        """The kernel's input rows live when the input blocks have `block_widths`: the first ones of each block."""
        return np.concatenate([offset + np.arange(int(w)) for offset, w in zip(self._block_offsets(), block_widths)])

    def _live_rows(self):
        """(live input rows, their count) of an exact pass over input blocks, as tensors (`input_rows`)."""
        offsets = self._block_offsets()
        widths = [tf.constant(channels, tf.int32) if owner is None
                  else tf.gather(tf.constant(owner.widths, tf.int32), owner._selected(WIDTH))
                  for owner, (_, channels) in zip(block_owners(self), self.input_blocks)]
        rows = tf.concat([int(offset) + tf.range(w) for offset, w in zip(offsets, widths)], axis=0)
        return rows, tf.add_n(widths)

    # --- build -----------------------------------------------------------------
    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        self.kernel = self.add_weight("kernel", shape=self._kernel_shape(input_shape),
                                      initializer=self.kernel_initializer, trainable=True)
        self.widths = (opts.width_options(self.max_width, self.alignment, self._widths_arg)
                       if self.has_width_choice else (self.max_width,))
        leader = self.width_from
        if leader is not None:
            if not leader.built or leader.max_width != self.max_width:
                raise ConfigError(f"layer {self.name} shares the width of {leader.name}, which "
                                  f"{'is not built yet' if not leader.built else 'has another largest width'}; "
                                  "give the layers joined by an Add the same width, and build the leader first")
            self.widths = leader.widths
        self.bias = (self.add_weight("bias", shape=(self.max_width,), initializer="zeros")
                     if self.use_bias else None)
        self.bn = (keras.layers.BatchNormalization(momentum=self.bn_momentum, name="bn")
                   if self.batch_norm else None)
        if self.bn is not None:
            out_shape = input_shape[:-1].concatenate([self.max_width])
            self.bn.build(out_shape)
        zeros = keras.initializers.Zeros()
        for dim in DIMENSIONS:  # width_logits, kernel_size_logits, pattern_logits, sparsity_logits, bits_logits
            if dim is WIDTH and leader is not None:  # one choice for the group: the leader's variables
                self.width_logits, self.width_index = leader.width_logits, leader.width_index
                continue
            setattr(self, f"{dim.name}_logits", self.add_weight(f"{dim.name}_logits", shape=(len(dim.options(self)),),
                                                                initializer=zeros)
                    if dim.stored(self) else tf.zeros([1]))
        self.temperature = self.add_weight(
            "temperature", shape=(), trainable=False,
            initializer=keras.initializers.Constant(self.initial_temperature))
        self.hard = self.add_weight("hard", shape=(), trainable=False, initializer=zeros)
        self.child = self.add_weight("child", shape=(), trainable=False, initializer=zeros)
        for dim in DIMENSIONS:  # width_index, kernel_size_index, pattern_index, sparsity_index, bits_index
            if dim is WIDTH and leader is not None:
                continue
            setattr(self, f"{dim.name}_index", self.add_weight(f"{dim.name}_index", shape=(), dtype=tf.int32,
                                                               trainable=False, initializer=zeros)
                    if dim.stored(self) else tf.constant(0, tf.int32))
        masks = np.array([[1.0 if c < w else 0.0 for c in range(self.max_width)] for w in self.widths], np.float32)
        self._width_masks = tf.constant(masks)
        super().build(input_shape)

    # --- choices ---------------------------------------------------------------
    def architecture_variables(self):
        """The choice logits this layer owns (a width group's are its leader's)."""
        return [dim.logits(self) for dim in DIMENSIONS if dim.stored(self) and not (dim is WIDTH and self.width_from)]

    def _exact(self):
        """1.0 when the forward pass computes one sub-network exactly (hard or child mode)."""
        return tf.maximum(self.hard, self.child)

    def _selected(self, dim):
        """The option index of `dim` in an exact forward pass: the child's index, else the decoded option."""
        return tf.where(self.child > 0.5, tf.cast(dim.index(self), tf.int64), decoded_index(dim.logits(self)))

    def _weights_for(self, dim, training):
        """The weights of `dim`'s options: the child's or the decoded one-hot, else the relaxed sample."""
        logits, index = dim.logits(self), dim.index(self)
        soft = _gumbel_softmax(logits, self.temperature) if training else tf.nn.softmax(logits)
        count = tf.shape(logits)[0]
        hard = tf.one_hot(decoded_index(logits), count, dtype=logits.dtype)
        child = tf.one_hot(index, count, dtype=logits.dtype)
        return self.child * child + (1.0 - self.child) * (self.hard * hard + (1.0 - self.hard) * soft)

    def choice_probabilities(self):
        """{dimension name: softmax(logits)} tensors, one-hot decoded options in hard mode."""
        def probs(logits):
            hard = tf.one_hot(decoded_index(logits), tf.shape(logits)[0], dtype=logits.dtype)
            return self.hard * hard + (1.0 - self.hard) * tf.nn.softmax(logits)
        return {dim.name: probs(dim.logits(self)) for dim in DIMENSIONS}

    def hard_choice(self) -> dict:
        """The decoded choice as plain numbers: {dimension name: option}."""
        return {dim.name: dim.value(self, decoded_index(dim.logits(self))) for dim in DIMENSIONS}

    def _exact_slice(self):
        """(input width, output width, prune count per sparsity rate, live input rows or None for the first input
        width ones) of the exact sub-network."""
        source = width_source(self)
        if self.input_blocks:
            in_options = input_width_options(self)
        else:
            in_options = (int(self.kernel.shape[self.in_axis]),) if source is None else source.widths
        out_options = self.widths if self.has_width_choice else (1,)
        if getattr(self, "_prune_counts", None) is None:  # numpy: usable in any graph
            self._prune_counts = np.array(
                [[[[pruned_count(r, self.kernel_area(k) * i * o) for r in self.sparsities]
                   for k in self.kernel_sizes] for o in out_options] for i in in_options], np.int32)
        zero = tf.constant(0, tf.int64)
        rows = None
        if self.input_blocks:
            rows, in_width = self._live_rows()
            in_index = tf.argmax(tf.cast(tf.equal(tf.constant(in_options, tf.int32), in_width), tf.int32))
        else:
            in_index = zero if source is None else source._selected(WIDTH)
            in_width = tf.gather(tf.constant(in_options, tf.int32), in_index)
        out_index = self._selected(WIDTH) if self.has_width_choice else zero
        counts = tf.gather_nd(tf.constant(self._prune_counts),
                              tf.stack([in_index, out_index, self._selected(KERNEL_SIZE)]))
        out_width = tf.gather(tf.constant(out_options, tf.int32), out_index)
        return in_width, out_width, counts, rows

    def _soft_kernel(self, training):
        """The full kernel under the relaxed kernel choices (kernel size, pattern, sparsity, then bits)."""
        kernel = self.kernel
        for dim in KERNEL_DIMENSIONS:
            kernel = dim.relaxed(self, kernel, self._weights_for(dim, training))
        return kernel

    def _exact_kernel(self):
        """(the chosen sub-kernel, its input width, its output width): the sub-kernel (the chosen widths of
        the chosen kernel size's centre) pruned by its own magnitudes and rounded to the chosen grid, as
        `size_model.layer_codes` and the export do.

        Only the chosen rate and grid are computed: an exact forward pass gives the choice
        logits no gradient, and the options' weighted sum would cost a sort and six roundings
        of every kernel in every pass (a quarter of the sandwich step, measured at batch 8).
        """
        in_width, out_width, counts, rows = self._exact_slice()
        rank = len(self.kernel.shape)
        kernel, size = self.kernel, [-1] * rank
        if rows is None:
            size[self.in_axis % rank] = in_width
        else:
            kernel = tf.gather(kernel, rows, axis=self.in_axis % rank)
        if self.has_width_choice:
            size[-1] = out_width
        kernel = tf.slice(kernel, [0] * rank, tf.stack(size))
        for dim in KERNEL_DIMENSIONS:
            kernel = dim.exact(self, kernel, self._selected(dim), counts)
        return kernel, in_width, out_width, rows

    def effective_kernel(self, training=False):
        """The kernel after the (relaxed or exact) kernel choices, at the full shape (in hard or child mode
        zero outside the chosen sub-kernel, which sits in the centre of the spatial axes)."""
        def exact():
            kernel, _, _, rows = self._exact_kernel()
            if rows is not None:  # each live row of the input blocks back in its place
                axis = self.in_axis % len(self.kernel.shape)
                moved = tf.experimental.numpy.moveaxis(kernel, axis, 0)
                moved = tf.scatter_nd(rows[:, None], moved,
                                      tf.concat([[self.max_input_width], tf.shape(moved)[1:]], axis=0))
                kernel = tf.experimental.numpy.moveaxis(moved, 0, axis)
            missing = tf.shape(self.kernel) - tf.shape(kernel)
            spatial = len(self.kernel.shape) - 2  # a convolution's two spatial axes lose their border on both sides
            before = tf.concat([missing[:spatial] // 2, tf.zeros_like(missing[spatial:])], axis=0)
            return tf.reshape(tf.pad(kernel, tf.stack([before, missing - before], axis=1)), self.kernel.shape)

        return tf.cond(self._exact() > 0.5, exact, lambda: self._soft_kernel(training))

    def _exact_output(self, inputs):
        """The sub-network's output at its own widths, zero-padded to the full width: what the full-width
        operation on the zero-padded sub-kernel gives, as the input's channels past the input width are
        zero (the previous layer masked them)."""
        kernel, in_width, out_width, rows = self._exact_kernel()
        y = self._apply(inputs[..., :in_width] if rows is None else tf.gather(inputs, rows, axis=-1), kernel)
        produced = out_width if self.has_width_choice else in_width
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[0, self.max_width - produced]]
        y = tf.pad(y, padding)
        y.set_shape(self.static_output_shape(inputs.shape))
        return y

    def static_output_shape(self, input_shape):
        """The output shape of the held kernel's operation (an exact pass's sub-kernel of unknown shape leaves
        TensorFlow's shape inference without it, e.g. for `valid` padding)."""
        return tf.TensorShape(input_shape)[:-1].concatenate([self.max_width])

    def _own_width_mask(self, training):
        g_w = self._weights_for(WIDTH, training)
        return tf.linalg.matvec(self._width_masks, g_w, transpose_a=True)

    def _width_mask(self, training):
        return self._own_width_mask(training)

    def call(self, inputs, training=None):
        training = bool(training) if training is not None else False
        passes = {"exact": lambda: self._exact_output(inputs),
                  "soft": lambda: self._apply(inputs, self._soft_kernel(training))}
        if _TRACED_PASS is None:
            y = tf.cond(self._exact() > 0.5, passes["exact"], passes["soft"])
        else:
            y = passes[_TRACED_PASS]()
        if self.bias is not None:
            y = y + self.bias
        if self.bn is not None:
            y = self.bn(y, training=training)
        if self.activation is not None:
            y = self.activation(y)
        mask = self._width_mask(training)
        self.last_width_mask = mask
        return y * tf.cast(mask, y.dtype) if mask is not None else y

    def get_config(self):
        config = super().get_config()
        config.update({
            "widths": list(self.widths) if self.built else self._widths_arg,
            "sparsities": list(self.sparsities), "bits": list(self.bits), "patterns": list(self.patterns),
            "alignment": self.alignment,
            "batch_norm": self.batch_norm, "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias, "bn_momentum": self.bn_momentum,
            "temperature": self.initial_temperature,
        })
        return config


class _SpatialLayer(SearchableLayer):
    """A convolution: its kernel size, strides and padding, and the kernel sizes it chooses from.

    `kernel_size` is the kernel the layer holds, the largest of `kernel_sizes` (default: that one
    size); each smaller size is its centre, which needs odd square sizes and a stride and padding
    under which the centre computes the smaller convolution (`kernel_sizes.crops_exactly`, checked
    when the layer sees its input's size).
    """

    def __init__(self, kernel_size, strides=1, padding="same", kernel_sizes=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
        self.padding = padding.upper()
        if kernel_sizes is None:
            self.kernel_sizes = (self.kernel_size[0],)
        else:
            self.kernel_sizes = opts.kernel_size_options(kernel_sizes)
            if self.kernel_size != (self.kernel_sizes[-1],) * 2:
                raise ConfigError(f"layer {self.name} holds a {self.kernel_size[0]}x{self.kernel_size[1]} kernel but "
                                  f"chooses kernel sizes {list(self.kernel_sizes)}; give it kernel_size="
                                  f"{self.kernel_sizes[-1]}, the largest option")

    def kernel_shape(self, kernel_size=None) -> tuple:
        """(height, width) of the kernel at `kernel_size`: the held one (which may be non-square; several sizes
        need square ones) for None or the largest option, else `kernel_size` x `kernel_size`."""
        return self.kernel_size if kernel_size in (None, self.kernel_sizes[-1]) else (int(kernel_size),) * 2

    def kernel_area(self, kernel_size=None) -> int:
        return int(np.prod(self.kernel_shape(kernel_size)))

    def centre(self, kernel: np.ndarray, kernel_size=None) -> np.ndarray:
        shape = self.kernel_shape(kernel_size)
        return kernel if shape == self.kernel_size else crop_np(kernel, shape[0])

    def static_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        spatial = []
        for n, k, s in zip(input_shape[1:3], self.kernel_size, self.strides):
            if n is None:
                spatial.append(None)
            else:
                spatial.append(-(-n // s) if self.padding == "SAME" else -(-(n - k + 1) // s))
        return tf.TensorShape([input_shape[0]] + spatial + [self.max_width])

    def build(self, input_shape):
        size = tuple(int(n) for n in tf.TensorShape(input_shape)[1:3])
        for k in self.kernel_sizes:
            if not crops_exactly(k, self.kernel_size[0], size, self.strides, self.padding):
                raise ConfigError(
                    f"layer {self.name} cannot choose a {k}x{k} kernel: at stride {self.strides[0]} with "
                    f"{self.padding.lower()} padding on its {size[0]}x{size[1]} input the centre of its "
                    f"{self.kernel_size[0]}x{self.kernel_size[0]} kernel reads other pixels than a {k}x{k} "
                    f"convolution; drop {k} from --config.search.kernel_sizes for it")
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding.lower(),
                       "kernel_sizes": list(self.kernel_sizes)})
        return config


class SearchableConv2D(_SpatialLayer):
    """Conv2D (HWIO kernel) with width, kernel size, pattern, sparsity and bit choices; per-channel grid."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(kernel_size, **kwargs)
        self.filters = int(filters)

    @property
    def max_width(self):
        return self.filters

    def _kernel_shape(self, input_shape):
        return self.kernel_size + (int(input_shape[-1]), self.filters)

    def _apply(self, x, kernel):
        return tf.nn.conv2d(x, kernel, strides=(1,) + self.strides + (1,), padding=self.padding)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config


class SearchableDepthwiseConv2D(_SpatialLayer):
    """DepthwiseConv2D (depth multiplier 1): kernel size, sparsity and bit choices, dense only; width follows
    its input.

    Give `input_from=` the searchable layer that produces its input, so that its output
    keeps exactly that layer's channels and the size model sees its input width.
    """

    channel_axis = 2  # kernel HWC1: one grid scale per channel
    in_axis = 2
    has_width_choice = False

    def __init__(self, kernel_size, **kwargs):
        super().__init__(kernel_size, **kwargs)
        if self.patterns != (opts.DENSE,):
            raise ConfigError(f"depthwise layer {self.name} cannot take the weight patterns {list(self.patterns)}: "
                              "each filter has one input channel, and N:M groups run along input channels; "
                              "give it patterns=('dense',)")
        self._channels = None

    @property
    def max_width(self):
        return self._channels

    def _kernel_shape(self, input_shape):
        self._channels = int(input_shape[-1])
        return self.kernel_size + (self._channels, 1)

    def _apply(self, x, kernel):
        return tf.nn.depthwise_conv2d(x, kernel, strides=(1,) + self.strides + (1,), padding=self.padding)

    def _width_mask(self, training):
        mask = getattr(self.input_from, "last_width_mask", None)
        if mask is None:
            return None
        # A mask traced in another graph (Keras' per-layer shape inference) cannot be used.
        if not tf.executing_eagerly() and getattr(mask, "graph", None) is not tf.compat.v1.get_default_graph():
            return None
        return mask


class SearchableDense(SearchableLayer):
    """Dense with width (units), pattern, sparsity and bit choices; one grid scale per tensor; no kernel size.

    A classifier keeps its units: `widths=[units]`.
    """

    channel_axis = None

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    @property
    def max_width(self):
        return self.units

    def _kernel_shape(self, input_shape):
        return (int(input_shape[-1]), self.units)

    def _apply(self, x, kernel):
        return tf.matmul(x, kernel)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


SEARCHABLE_LAYERS = (SearchableConv2D, SearchableDepthwiseConv2D, SearchableDense)
CUSTOM_OBJECTS = {cls.__name__: cls for cls in SEARCHABLE_LAYERS}


def width_source(layer):
    """The layer whose width choice sets `layer`'s input channels (through depthwise layers), or None."""
    source = layer.input_from
    while source is not None and not source.has_width_choice:
        source = source.input_from
    return source


def block_owners(layer) -> list:
    """For each of `layer`'s input blocks, the layer that holds the width choice setting its channels (its width
    group's leader; through depthwise layers, the one before them), or None for a block of fixed channels."""
    owners = []
    for source, _ in layer.input_blocks:
        owner = source if source.has_width_choice else width_source(source)
        owners.append(None if owner is None else (owner.width_from or owner))
    return owners


def input_block_widths(layer) -> list[tuple]:
    """Every joint choice of `layer`'s input block widths, in the order of `itertools.product` over the distinct
    owners' options (`block_owners`; the first owner's option varies slowest)."""
    owners = block_owners(layer)
    distinct = list(dict.fromkeys(o for o in owners if o is not None))
    channels = [c for _, c in layer.input_blocks]
    return [tuple(c if o is None else o.widths[pick[distinct.index(o)]] for o, c in zip(owners, channels))
            for pick in itertools.product(*(range(len(o.widths)) for o in distinct))]


def input_width_options(layer) -> tuple:
    """The input widths `layer`'s blocks can sum to, in increasing order."""
    return tuple(sorted({sum(widths) for widths in input_block_widths(layer)}))


def searchable_layers(model):
    """The searchable layers of a model, in the order Keras lists them (input to output)."""
    found = []
    for layer in getattr(model, "layers", [model]):
        if isinstance(layer, SearchableLayer):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(searchable_layers(layer))
    return found


def set_hard(model, hard: bool = True):
    for layer in searchable_layers(model):
        layer.hard.assign(1.0 if hard else 0.0)


def set_temperature(model, temperature: float):
    for layer in searchable_layers(model):
        layer.temperature.assign(float(temperature))


def temperature_at(step, total_steps, start=DEFAULT_START_TEMPERATURE, end=DEFAULT_END_TEMPERATURE):
    """Exponential annealing: `start` at step 0, `end` from `total_steps` on."""
    fraction = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return float(start * (end / start) ** fraction)


class TemperatureAnnealing(keras.callbacks.Callback):
    """Sets every searchable layer's Gumbel-softmax temperature at the start of each batch."""

    def __init__(self, total_steps, start=DEFAULT_START_TEMPERATURE, end=DEFAULT_END_TEMPERATURE):
        super().__init__()
        self.total_steps, self.start, self.end = total_steps, start, end
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        set_temperature(self.model, temperature_at(self.step, self.total_steps, self.start, self.end))
        self.step += 1


def architecture_variables(model):
    """The choice logits of every searchable layer (train them with their own optimizer)."""
    return [v for layer in searchable_layers(model) for v in layer.architecture_variables()]
