"""Search under a budget: train the supernet once, then search each budget on its trained weights.

Two resumable stages (`SupernetSearch.run`, `udc.search.state`), then selection (`udc.search.selection`):

1. **Supernet training** (`search.supernet_epochs`), once for every budget: the supernet
   starts as the trained float backbone (`search.warm_start`, `udc.search.warm_start`; the float
   model of `search.float_model`, or one trained with the config's `train` section into
   WORKDIR/float) and only its weights train, with uniform choices (the logits stay at 0).
   The loss (`search.training = "sandwich"`, the default) is the soft Gumbel-softmax
   mixture's cross-entropy plus the **sandwich rule** on exact children: the largest child
   on the labels, the smallest and `search.sampled_children` children sampled uniformly on
   `(1 - w) * cross-entropy + w * KD(largest child)` (in-place distillation, w =
   `search.distillation_weight`; `udc.training.distillation`, `udc.space.children`).
   Why children: trained only as the mixture (`search.training = "soft"`, kept for
   comparison), the argmax network -- the one that ships -- sat at 11-33 % validation
   accuracy on Fashion-MNIST while the mixture trained at 91 %; one-shot NAS trains the
   exact children every step (BigNAS, OFA, AttentiveNAS). Why the mixture too: it is what
   the search stage differentiates, so its outputs must mean something. Batches are
   augmented (`augment`, `udc.training.augment`); the learning rate follows a cosine decay
   (`search.lr_schedule`). The trained supernet lives in `search.supernet` (default
   WORKDIR/supernet); searches of the same config at other budgets that name the same
   folder start from it (`udc-benchmark`, `udc-ensemble`: train once, search many).
2. **Search** (`search.search_epochs`), per budget: only the choice logits move, on

       loss = task loss of the soft mixture + lambda * E[bytes] / target,   target = (1 - margin) * budget

   with the trained weights fixed (a search step is one forward and backward pass of the
   mixture: 143 ms against 337 ms for a training step on Fashion-MNIST, batch 128, udc.md).
   By default (`search.relaxation = "relaxed_then_straight_through"`) the first half of the
   search steps forwards the mixture and the second half one sampled child: each choice the
   one-hot of its Gumbel-softmax sample, the logits getting the relaxed sample's gradient
   (GDAS-style; `udc.space.layers.straight_through_samples`, `straight_through_at`), so
   the logits end up following the task loss of whole children, not of a mixture of fractional
   widths that at small budgets was worth more than any whole child of its size. Measured on
   the same trained supernets (benchmarks/fashion_mnist/straight_through.md, 11 searches each):
   the decoded child ends within 4 points of the mixture everywhere (the mixture alone,
   `gumbel_softmax`: up to 21.8 points below it at 8 KiB; sampled children throughout,
   `straight_through`: up to 6.2), and the shipped models are as accurate (seed-0 front mean
   91.56 % against 91.47 % and 91.46 %). E[bytes] is the size model's
   differentiable expectation of Vela's encoded weight bytes (`udc.costs.size_model`,
   calibrated on the trained weights, plus the ones-kernel Vela adds for the global
   pooling, whose size follows the last convolution's width). lambda is a Lagrange
   multiplier updated by dual ascent after every step,
   `lambda <- max(0, lambda + eta * (E[bytes] / target - 1))` (eta =
   `dual_learning_rate / steps_per_epoch`): it rises while the expected size is over the
   target and falls back when it is under, so the budget is met without a hand-tuned
   penalty. The Gumbel temperature falls from start to end over the search. Why a
   dual learning rate of 4 (`search.dual_learning_rate`): at 1, after the one search
   epoch E[bytes] was still 25-30 % over the target at 8 and 16 KiB on Fashion-MNIST;
   at 4 it ended 5-6 % over. Each search epoch reports the validation accuracy of the
   decoded child (below) and of the mixture (without noise, BatchNorm recalibrated for
   each). With the relaxed mixture they are not yet close everywhere: at the end of the
   Fashion-MNIST searches the decoded child sat 0.4 to 1.1 points below the mixture from 16
   to 64 KiB (seed 0), but 5.7 to 21.8 points below at 8 KiB and up to 8.5 at 16 KiB with
   other seeds (benchmarks/fashion_mnist/search_end.md): the mixture's fractional widths at
   the budget are worth more than any whole child of that size.
   With a latency budget (`budget_cycles`, or `budget_ms` at the target's clock) the loss
   has a second term, mu * E[cycles] / cycle target, with its own multiplier mu updated the
   same way; E[cycles] is the cycle model's (`udc.costs.cycle_model`, tables measured
   once per target beside the supernet), and the cycle target is `search.cycle_margin` under
   the budget (3 %: no repair follows for cycles). With `budget_kb=0` beside a latency budget
   the byte term is left out (its multiplier stays 0) and selection fits the cycles alone.
3. **Selection**: candidates are the decoded choice of every layer (the median of its
   distribution, `udc.space.layers.decoded_index`) and `search.candidates`
   children sampled from the final choice distribution. Each must fit the target by its
   exact codec bytes (the stripped weights through Vela's encoder, plus the pooling
   weights) and, with a latency budget, the cycle target by the cycle tables (`Limit`),
   else **repair**: repeatedly take the single move (one layer one step
   narrower, sparser or fewer bits) that loses the least log-probability per byte saved,
   until it fits. A candidate under the target is **filled** the same way in reverse
   (wider, denser, more bits, least log-probability lost per byte added) while it still
   fits (`search.fill_budget`, default on): the decoded choice of a search steered by
   the expected size can land far from the budget. Each candidate then runs as an exact
   child (BatchNorm recalibrated) on the validation split and the most accurate ships.
   Why not the decoded choice alone: the mixture's gradient ranks choices, but the
   shipped network is a child, and its accuracy on frozen weights is what can be
   measured (on a digits test the argmax child sat at 26-56 % while the largest was at
   97 %).

`udc.workflows.pipeline` then strips, fine-tunes (QAT) and exports, and checks the guarantee with
Vela itself (`udc.deploy.budget_repair` for a miss).

A budget below the smallest network of the space (narrowest widths, highest sparsity,
fewest bits, measured by the codec on the initial weights) is rejected before training.
Checkpoints, each stage its own (`Stage`, `udc.training.checkpoints`): SUPERNET/ (the supernet and
its optimizer) with SUPERNET/state.json, and WORKDIR/checkpoints (the supernet, the
logits' optimizer, lambda) with WORKDIR/search_state.json; each state names its
checkpoint, its history and the config it was made with (the supernet's without the
per-budget keys, `PER_BUDGET_KEYS`). A resume with a different config is refused, naming
the keys that differ. A step that leaves a weight, a choice logit, the multiplier or the
expected size non-finite stops there (`udc.training.epoch_loop`).
"""
import math
import time
from pathlib import Path

import numpy as np

from udc.compat import keras, tf
from udc.errors import ConfigError, UdcError
from udc.fileio import ensure_writable_dir
from udc.search.selection import Cycles, Limit, Sizes, fill, format_choices, format_costs, repair
from udc.search.settings import (AFTER_SEARCH_KEYS, KIB, PER_BUDGET_KEYS, budget_bytes, budget_cycles, check_training,
                                 config_fingerprint, search_options, straight_through_at)
from udc.search.state import (SEARCH_CHECKPOINT_DIR, STATE_FILE, SUPERNET_STATE_FILE, Stage,
                              supernet_path)
from udc.deploy.strip import largest_child_template
from udc.search.warm_start import load_float_weights
from udc.space import children, layers as search_layers
from udc.space.children import set_choices
from udc.space.dimensions import DIMENSIONS
from udc.space.patterns import DENSE
from udc.space.supernet import build_supernet
from udc.targets import target_of
from udc.training import checkpoints
from udc.training.augment import Augmentation
from udc.training.batch_norm import reestimate_statistics
from udc.training.distillation import distillation_loss
from udc.training.epoch_loop import all_finite, epoch_batches, learning_rate_schedule, named, non_finite_error
from udc.training.progress import StepProgress
from udc.workdir_lock import workdir_lock

_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


def recalibrate_batch_norm(model, forward, split, batch_size, batches=20, seed=0, hard=True):
    """Moving BatchNorm statistics of the current hard sub-network (leaves the model in hard mode), or
    of the soft mixture (`hard=False`).

    The statistics gathered while training on soft mixtures do not fit one hard choice
    (its inputs are not scaled by fractional width masks), which leaves the decoded net
    near chance in inference; the plain average of the batch statistics of a few training
    batches run through the hard net fixes that (the usual one-shot NAS recalibration).
    Only moving statistics change; weights and choices do not.

    The mixture's passes weigh the options by softmax(logits) (`inference_weights`), not by
    Gumbel samples: the statistics are those of the mixture that inference evaluates. Gathered
    from samples at the end temperature, they moved the mixture's figure by 5 points between two
    searches of nearly the same logits.

    `forward(x)` runs `model` in training mode, traced once (`tf.function`): the child is
    chosen by variables, so one trace serves every child; run eagerly, the 20 batches took
    5.5 s a child on Fashion-MNIST, most of the time of selection (`udc.training.batch_norm`).
    """
    search_layers.set_hard(model, hard)
    norms = [layer.bn for layer in search_layers.searchable_layers(model) if layer.bn is not None]
    with search_layers.inference_weights():
        reestimate_statistics(norms, forward, split, batch_size, batches, seed)


def _accuracy_of(predict, split, batch_size=512):
    """Accuracy on `split` of `predict` (images -> logits)."""
    if not len(split):
        return float("nan")
    correct = 0
    for i in range(0, len(split), batch_size):
        logits = predict(split.x[i:i + batch_size])
        correct += int(np.sum(np.argmax(logits.numpy(), axis=1) == split.y[i:i + batch_size]))
    return correct / len(split)


class SupernetSearch:
    """The supernet and its two resumable stages: training (shared by every budget) and search (one budget).

    `supernet_dir` holds the trained supernet (default WORKDIR/supernet); searches at other
    budgets that name the same folder (`search.supernet`) start from it without training it again.
    """

    def __init__(self, config, splits, workdir, supernet_dir=None, log=print):
        self.config, self.splits, self.log = config, splits, log
        self.workdir = ensure_writable_dir(workdir)
        self.supernet_dir = Path(supernet_dir or supernet_path(config, self.workdir))
        s = config.search
        self.options = search_options(config)
        check_training(config)
        self.budget = budget_bytes(config)
        self.target_bytes = self.budget * (1.0 - float(s.budget_margin))
        self.hardware = target_of(config)  # the udc.targets.Target searched for
        self.budget_cycles = budget_cycles(config, self.hardware)
        self.target_cycles = self.budget_cycles * (1.0 - float(s.cycle_margin))
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        self.model = build_supernet(config.backbone, splits.input_shape, splits.num_classes, self.options,
                                    s.max_widths)
        self.layers = search_layers.searchable_layers(self.model)
        self.sizes = Sizes(self.model, self.hardware)
        self.arch_vars = search_layers.architecture_variables(self.model)
        arch_ids = {id(v) for v in self.arch_vars}
        self.weight_vars = [v for v in self.model.trainable_variables if id(v) not in arch_ids]
        self.supernet_epochs, self.search_epochs = int(s.supernet_epochs), int(s.search_epochs)
        self.epochs = self.supernet_epochs + self.search_epochs
        steps = len(splits.train) // int(s.batch_size)
        if steps < 1:
            raise ConfigError(f"search.batch_size {s.batch_size} exceeds the {len(splits.train)} training "
                              "examples; lower --config.search.batch_size")
        self.steps_per_epoch = min(steps, int(s.steps_per_epoch)) if s.steps_per_epoch else steps
        self.weight_opt = keras.optimizers.Adam(learning_rate_schedule(
            s.lr_schedule, float(s.learning_rate), self.supernet_epochs * self.steps_per_epoch))
        self.arch_opt = keras.optimizers.Adam(float(s.arch_learning_rate), beta_1=0.5)
        self.weight_opt.build(self.weight_vars)
        self.arch_opt.build(self.arch_vars)
        self.lam = tf.Variable(0.0, trainable=False, name="multiplier")
        self.lam_cycles = tf.Variable(0.0, trainable=False, name="cycle_multiplier")
        self.cycles = None  # Cycles, with a cycle budget (`use_cycle_tables`)
        self.noise = tf.random.Generator.from_seed(config.seed)
        search_layers.use_noise_generator(self.noise)
        self.augmentation = Augmentation.from_config(config.get("augment"))
        self.eta = float(s.dual_learning_rate) / self.steps_per_epoch
        self.training = Stage(
            self.supernet_dir / SUPERNET_STATE_FILE, self.supernet_dir,
            tf.train.Checkpoint(model=self.model, weight_opt=self.weight_opt),
            config_fingerprint(config, ignore=PER_BUDGET_KEYS), self.supernet_dir)
        self.searching = Stage(
            self.workdir / STATE_FILE, self.workdir / SEARCH_CHECKPOINT_DIR,
            # The cycle multiplier only with a cycle budget: byte-only checkpoints have none to restore.
            tf.train.Checkpoint(model=self.model, arch_opt=self.arch_opt, multiplier=self.lam,
                                **({"cycle_multiplier": self.lam_cycles} if self.budget_cycles else {})),
            config_fingerprint(config, ignore=AFTER_SEARCH_KEYS), self.workdir)
        self.selection = None  # what `select` measured: candidates and their validation accuracies
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        # Traced without autograph: the steps branch with tf.cond and the layers' Python choices are fixed at
        # trace time, so converting every function they call only costs time (the KWS end-to-end test's
        # search, 124 s with it, 107 s without, alone).
        self.train_step = tf.function(self._train_step, autograph=False)
        self.search_step = tf.function(self._search_step, autograph=False)
        # Inference of whichever child the mode variables name (traced once per batch shape).
        self.predict = tf.function(lambda x: self.model(x, training=False), autograph=False)
        # BatchNorm recalibration.
        self.train_forward = tf.function(lambda x: self.model(x, training=True), autograph=False)
        self.writer = (tf.summary.create_file_writer(str(self.workdir / "tensorboard"))
                       if s.tensorboard else None)

    # --- steps -------------------------------------------------------------
    def _accuracy(self, y, logits):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32),
                                               tf.cast(y, tf.int32)), tf.float32))

    def training_loss(self, x, y, without=()):
        """(loss, logits whose accuracy is reported) of one batch, by the config's training rule.

        `without` leaves sandwich passes out ("mixture", "smallest", "sampled"): what
        `tools/step_passes.py` times; training runs them all.
        """
        def soft_pass():
            with search_layers.traced_pass("soft"):
                return self.model(x, training=True)

        def child_pass(use_child):
            use_child(self.layers)
            with search_layers.traced_pass("exact"):
                return self.model(x, training=True)

        if self.config.search.training == "soft":
            logits = soft_pass()
            return self._loss(y, logits), logits
        s = self.config.search
        weight, temperature = float(s.distillation_weight), float(s.distillation_temperature)
        loss = 0.0
        if "mixture" not in without:
            loss += self._loss(y, soft_pass())  # the soft mixture: what the search will steer
        largest = child_pass(children.use_largest)
        loss += self._loss(y, largest)
        if "smallest" not in without:
            loss += distillation_loss(y, child_pass(children.use_smallest), largest, weight, temperature)
        for _ in range(0 if "sampled" in without else int(s.sampled_children)):
            loss += distillation_loss(y, child_pass(children.use_sampled), largest, weight, temperature)
        children.release(self.layers)
        return loss, largest

    def _train_step(self, x, y):
        """One step of supernet training: the weights only, choices uniform (the logits stay at 0)."""
        x = self.augmentation(x, self.noise)
        with tf.GradientTape() as tape:
            loss, logits = self.training_loss(x, y)
        self.weight_opt.apply_gradients(zip(tape.gradient(loss, self.weight_vars), self.weight_vars))
        finite = all_finite(self.weight_vars + [loss])
        return loss, self._accuracy(y, logits), self.sizes.expected(), finite

    def _search_step(self, x, y):
        """One step of the search: the choice logits only, on the soft mixture plus one term per budget,
        and each multiplier's dual ascent; the trained weights stay as they are."""
        x = self.augmentation(x, self.noise)
        with tf.GradientTape() as tape, search_layers.traced_pass("soft"):
            logits = self.model(x, training=True)
            task = self._loss(y, logits)
            size = self.sizes.expected()
            loss = task + (self.lam * size / self.target_bytes if self.budget else 0.0)
            if self.cycles is not None:
                cycles = self.cycles.expected()
                loss += self.lam_cycles * cycles / self.target_cycles
        self.arch_opt.apply_gradients(zip(tape.gradient(loss, self.arch_vars), self.arch_vars))
        if self.budget:
            self.lam.assign(tf.maximum(0.0, self.lam + self.eta * (size / self.target_bytes - 1.0)))
        watched = self.arch_vars + [self.lam, size, task]
        if self.cycles is not None:
            self.lam_cycles.assign(tf.maximum(0.0, self.lam_cycles + self.eta * (cycles / self.target_cycles - 1.0)))
            watched += [self.lam_cycles, cycles]
        return task, self._accuracy(y, logits), size, all_finite(watched)

    # --- checks ------------------------------------------------------------
    def use_cycle_tables(self) -> None:
        """With a cycle budget: the target's cycle tables for this supernet (`udc.costs.cycle_model`),
        cached in its folder, measured the first time (about 30 s for fmnist_cnn)."""
        if not self.budget_cycles or self.cycles is not None:
            return
        from udc.costs import cycle_model

        path = self.supernet_dir / f"cycles_{self.hardware.name}.json"
        ensure_writable_dir(self.supernet_dir)
        tables = cycle_model.load_or_measure(
            path, self.model, self.hardware,
            lambda: largest_child_template(self.model, self.splits.train.x[:64]), log=self.log)
        self.cycles = Cycles(self.sizes, tables)

    def limits(self, limit_bytes=None) -> list:
        """What a selected child must fit: the byte target (or `limit_bytes`), with a byte budget, and the
        cycle target, with a cycle budget."""
        limits = []
        if self.budget or limit_bytes is not None:
            limits.append(Limit(self.sizes, int(self.target_bytes if limit_bytes is None else limit_bytes), "B"))
        if self.budget_cycles:
            self.use_cycle_tables()
            limits.append(Limit(self.cycles, int(self.target_cycles), "cycles"))
        return limits

    def check_feasible(self):
        """Rejects a budget below the smallest (or, for cycles, the fastest) network of the space, before
        any training."""
        self.sizes.calibrate()
        smallest = self.sizes.exact(self.sizes.smallest_choices())
        self.smallest_bytes = smallest
        if self.budget_cycles:
            self.use_cycle_tables()
            fastest = self.cycles.exact(self.sizes.smallest_choices())
            if fastest > self.budget_cycles:
                raise ConfigError(
                    f"budget_cycles {self.budget_cycles:,} is below the fastest network this search space allows "
                    f"on {self.hardware.name}: {fastest:,} cycles ({self._smallest_options()}); "
                    f"raise --config.budget_cycles to at least {fastest}")
        if self.budget and smallest > self.budget:
            raise ConfigError(
                f"budget {float(self.config.search.budget_kb):g} KiB ({self.budget} B) is below the smallest network this search "
                f"space allows: {smallest} B ({smallest / KIB:.2f} KiB encoded, {self._smallest_options()}); "
                f"raise --config.budget_kb to at least {math.ceil(smallest / KIB * 100) / 100:g}")
        return smallest

    def _smallest_options(self) -> str:
        """What the smallest network of the space takes, in words."""
        patterns = [p for p in self.options.patterns if p != DENSE]
        kernels = "smallest kernel sizes each layer takes, " if self.options.kernel_sizes else ""
        return (f"narrowest widths, {kernels}{patterns[-1] + ' pattern, ' if patterns else ''}"
                f"{self.options.sparsities[-1]:.0%} sparsity, {self.options.bits[0]} bits")

    # --- epochs ------------------------------------------------------------
    def run(self, stop_after_epochs=None, float_model=None) -> bool:
        """Trains the supernet (unless `supernet_dir` holds it already), then searches this budget.

        `float_model`: a callable giving the trained float backbone to start from (called only
        if the supernet's training has not begun). `stop_after_epochs` (counted over both
        stages) simulates an interruption: False if it stopped the run.
        """
        if self.searching.restore() and self.searching.epochs_done:
            self.log(f"resuming the search in {self.workdir} after epoch {self.searching.epochs_done} of "
                     f"{self.search_epochs}")
        else:
            if not self._train(stop_after_epochs, float_model):
                return False
            # The search starts from the trained supernet: weights and BatchNorm statistics.
            if self.training.epochs_done:
                checkpoints.restore(tf.train.Checkpoint(model=self.model), self.training.last_checkpoint(),
                                    self.supernet_dir, partial=True)
        stop = None if stop_after_epochs is None else stop_after_epochs - self.supernet_epochs
        return self._search(stop)

    def use_trained_supernet(self) -> None:
        """The trained supernet's weights, with no search (its choice logits stay uniform): what the
        controls of `udc.workflows.controls` pick children from. UdcError if its training has not finished."""
        self.training.restore()  # its checkpoint holds the weights and BatchNorm statistics
        if self.training.epochs_done < self.supernet_epochs:
            raise UdcError(f"the supernet in {self.supernet_dir} has trained {self.training.epochs_done} of "
                           f"{self.supernet_epochs} epochs; finish its search first (udc-search with the same "
                           "--config.search.supernet)")

    def _train(self, stop_after_epochs, float_model) -> bool:
        with workdir_lock(self.supernet_dir):  # searches at other budgets may share this supernet
            self.training.restore()
            done = self.training.epochs_done
            if done and done >= self.supernet_epochs:
                self.log(f"the supernet in {self.supernet_dir} is trained ({done} epochs): searching this budget")
                return True
            if done:
                self.log(f"resuming the supernet's training in {self.supernet_dir} after epoch {done} of "
                         f"{self.supernet_epochs}")
            elif float_model is not None:
                model, path = float_model()
                self.log(f"warm start from the float model {path}")
                load_float_weights(self.model, model)
            self.training.begin()
            temperature = float(self.config.search.start_temperature)
            search_layers.set_temperature(self.model, temperature)
            for epoch in range(done, self.supernet_epochs):
                if stop_after_epochs is not None and epoch >= stop_after_epochs:
                    return False
                self._epoch(self.train_step, self.training, "supernet", epoch, self.supernet_epochs, epoch,
                            lambda i: temperature)
        return True

    def _search(self, stop_after_epochs) -> bool:
        s = self.config.search
        total_steps = max(1, self.search_epochs * self.steps_per_epoch)
        self.use_cycle_tables()  # before the search step is traced: its loss has the cycle term
        self.searching.begin()
        for epoch in range(self.searching.epochs_done, self.search_epochs):
            if stop_after_epochs is not None and epoch >= stop_after_epochs:
                return False
            self.sizes.calibrate()
            first = epoch * self.steps_per_epoch
            self._epoch(self.search_step, self.searching, "search", epoch, self.search_epochs,
                        self.supernet_epochs + epoch,
                        lambda i: search_layers.temperature_at(first + i, total_steps, float(s.start_temperature),
                                                               float(s.end_temperature)),
                        lambda i: straight_through_at(s.relaxation, first + i, total_steps))
        return True

    def _epoch(self, step, stage, name, epoch, epochs, batch_epoch, temperature, straight_through=lambda i: False):
        """One epoch of `step` (batches and noise by (seed, `batch_epoch`)), checkpointed in `stage`;
        step i runs at `temperature(i)`, on sampled children if `straight_through(i)`."""
        s = self.config.search
        self.noise.reset_from_seed(self.config.seed * 100003 + batch_epoch)
        start = time.perf_counter()
        losses, accs, step_times = [], [], []
        label = f"{name} epoch {epoch + 1}/{epochs}"
        progress = StepProgress(label, self.steps_per_epoch)
        for i, (x, y) in enumerate(epoch_batches(self.splits.train, int(s.batch_size), self.config.seed,
                                                 batch_epoch, self.steps_per_epoch)):
            search_layers.set_temperature(self.model, temperature(i))
            t0 = time.perf_counter()
            with search_layers.straight_through_samples(straight_through(i)):
                loss, acc, size, finite = step(x, y)
            step_times.append(time.perf_counter() - t0)
            if not finite:
                progress.clear()
                raise self._non_finite(stage, name, epoch, i, loss, size)
            losses.append(float(loss))
            progress.update(i + 1, losses[-1])
            accs.append(float(acc))
        progress.clear()
        self._end_epoch(stage, name, label, epoch, losses, accs, step_times, time.perf_counter() - start,
                        temperature(self.steps_per_epoch - 1))

    def _non_finite(self, stage, name, epoch, step, loss, size) -> UdcError:
        kept = (f"kept the last good checkpoint (after {name} epoch {epoch}) in {stage.directory}"
                if epoch else f"no {name} epoch had finished, so there is no checkpoint")
        values = {"loss": loss, **named(self.model.trainable_variables), "multiplier": self.lam.numpy(),
                  "expected size": size}
        return non_finite_error(f"{name} epoch {epoch + 1} step {step + 1}", values, kept,
                                "check the training data for NaN, or lower --config.search.learning_rate or "
                                "arch_learning_rate")

    def _child_accuracy(self, use_child) -> float:
        """Validation accuracy of one exact child, with BatchNorm statistics recalibrated for it."""
        use_child(self.layers)
        try:
            self.recalibrate_batch_norm()
            return _accuracy_of(self.predict, self.splits.val)
        finally:
            children.release(self.layers)
            search_layers.set_hard(self.model, False)

    def mixture_accuracy(self) -> float:
        """Validation accuracy of the soft mixture (softmax weights, no noise), BatchNorm recalibrated for it."""
        recalibrate_batch_norm(self.model, self.train_forward, self.splits.train,
                               int(self.config.search.batch_size), seed=self.config.seed, hard=False)
        return _accuracy_of(self.predict, self.splits.val)

    def _end_epoch(self, stage, name, label, epoch, losses, accs, step_times, seconds, temperature):
        # The largest child is what the others learn from. In training the choices are uniform, so
        # the smallest child stands for the cheap end; in the search the decoded child is the
        # network that ships, and it should come close to the mixture the search steers.
        val_largest = self._child_accuracy(children.use_largest)
        if name == "supernet":
            others = {"val_accuracy_smallest": self._child_accuracy(children.use_smallest)}
            shown = f"smallest child {others['val_accuracy_smallest']:.2%}"
        else:
            others = {"val_accuracy": self._child_accuracy(lambda layers: None),
                      "val_accuracy_mixture": self.mixture_accuracy()}
            shown = (f"decoded child {others['val_accuracy']:.2%}, mixture "
                     f"{others['val_accuracy_mixture']:.2%}")
        expected = float(self.sizes.expected())
        choices = {layer.name: layer.hard_choice() for layer in self.layers}
        cycle_figures = {}
        if self.cycles is not None:
            cycle_figures = {"expected_cycles": float(self.cycles.expected()), "budget_cycles": self.budget_cycles,
                             "multiplier_cycles": float(self.lam_cycles.numpy())}
        record = {
            "epoch": epoch + 1, "stage": name, "loss": float(np.mean(losses)),
            "accuracy": float(np.mean(accs)), **others, "val_accuracy_largest": val_largest,
            "expected_bytes": expected,
            "budget_bytes": self.budget, "multiplier": float(self.lam.numpy()), **cycle_figures,
            "temperature": temperature,
            "seconds": seconds, "step_seconds": float(np.median(step_times[1:] or step_times)),
            "choices": choices,
        }
        self.log(f"{label} loss {record['loss']:.4f} acc {record['accuracy']:.2%} "
                 f"val: {shown}, largest {val_largest:.2%} "
                 f"E[size] {expected / KIB:.2f} KiB "
                 + (f"/ budget {self.budget / KIB:g} KiB multiplier {record['multiplier']:.3f} " if self.budget else "")
                 + (f"E[cycles] {cycle_figures['expected_cycles']:,.0f} / budget {self.budget_cycles:,} multiplier "
                    f"{cycle_figures['multiplier_cycles']:.3f} " if cycle_figures else "")
                 + f"T {temperature:.2f} ({seconds:.0f} s)")
        if name == "search":
            self.log(f"  choices (width/kernel size/sparsity/bits): {format_choices(choices, self.layers)}")
        if self.writer is not None:
            with self.writer.as_default(step=len(self.history()) + 1):
                for key in ("loss", "accuracy", "val_accuracy", "val_accuracy_mixture", "val_accuracy_smallest",
                            "val_accuracy_largest",
                            "expected_bytes", "multiplier", "temperature"):
                    if key in record:
                        # tf.summary.scalar lives in the tensorboard package (not a dependency);
                        # this is what it writes: a float32 scalar tagged for the scalars plugin.
                        tf.summary.write(key, tf.constant(record[key], tf.float32), metadata=_SCALAR_METADATA)
            self.writer.flush()
        stage.save(record)

    def history(self) -> list:
        """The epochs of both stages, training first."""
        return self.training.state["history"] + self.searching.state["history"]

    def recalibrate_batch_norm(self, choices=None):
        """BatchNorm statistics of `choices` (default: the decoded choices); the choice logits are left as they
        were."""
        saved = [v.numpy() for v in self.arch_vars]
        if choices is not None:

            set_choices(self.model, choices)
        recalibrate_batch_norm(self.model, self.train_forward, self.splits.train,
                               int(self.config.search.batch_size), seed=self.config.seed)
        for v, value in zip(self.arch_vars, saved):
            v.assign(value)

    # --- selection -----------------------------------------------------------
    def select(self, limit=None) -> dict:
        """The most accurate of the candidates (see module doc) whose exact costs fit their limits
        (`limits`; `limit`: bytes instead of the byte target); records the candidates' accuracies in
        `self.selection`."""
        self.sizes.calibrate()
        limits = self.limits(limit)
        decoded = {layer.name: layer.hard_choice() for layer in self.layers}
        self.log(f"selection: decoded {format_choices(decoded, self.layers)}: {format_costs(limits, decoded)} (limits "
                 + ", ".join(f"{l.limit:,.0f} {l.unit}" for l in limits) + ")")
        rng = np.random.default_rng(self.config.seed)
        candidates = []
        for choices in [decoded] + [self._sampled_choices(rng) for _ in range(int(self.config.search.candidates))]:
            choices = self.fit_to_limit(choices, limit)
            if choices not in candidates:
                candidates.append(choices)
        scored = [(self.child_accuracy(c), i, c) for i, c in enumerate(candidates)]
        accuracy, index, best = max(scored, key=lambda item: (item[0], -item[1]))
        self.selection = {"candidates": len(candidates), "val_accuracy": accuracy,
                          "decoded_val_accuracy": scored[0][0],
                          "candidate_val_accuracies": [round(a, 4) for a, _, _ in scored]}
        self.log(f"  {len(candidates)} candidates within the limits, validation accuracy "
                 f"{min(a for a, _, _ in scored):.2%}..{accuracy:.2%} (the decoded one's: {scored[0][0]:.2%}); "
                 f"chosen: {'the decoded one' if index == 0 else f'sample {index}'}: "
                 f"{format_choices(best, self.layers)} {format_costs(limits, best)}")
        return best

    def _sampled_choices(self, rng) -> dict:
        """A child drawn from the search's final choice distribution softmax(logits)."""
        choices = {}
        for layer in self.layers:
            choices[layer.name] = {}
            for dim in DIMENSIONS:
                if not dim.stored(layer):  # its one option, drawing nothing: the candidates stay those of before
                    choices[layer.name][dim.name] = dim.options(layer)[0]
                    continue
                p = tf.nn.softmax(dim.logits(layer)).numpy().astype(np.float64)
                choices[layer.name][dim.name] = dim.options(layer)[int(rng.choice(len(p), p=p / p.sum()))]
        return children.with_shared_widths(self.layers, choices)

    def child_accuracy(self, choices) -> float:
        """Validation accuracy of the exact child of `choices` on the current weights (BatchNorm recalibrated)."""
        return self._child_accuracy(lambda layers: children.use_choices(layers, choices))

    def fit_to_limit(self, choices, limit=None) -> dict:
        """`choices` repaired down to the limits (`limits`; `limit`: bytes instead of the byte target) if
        over, then filled up to them (`search.fill_budget`)."""
        limits = self.limits(limit)
        if any(l.cost.exact(choices) > l.limit for l in limits):
            choices = repair(limits, choices, log=lambda _: None)
        if self.config.search.get("fill_budget", True):  # also takes back what a repair overshot
            choices = fill(limits, choices, log=lambda _: None)
        return choices
