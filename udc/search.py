"""Search under a budget: warm-up, differentiable search with dual ascent, selection, repair.

Stages (one call of `run_search`, resumable from WORKDIR at every epoch):

0. **Warm start** (`search.warm_start`, default on): the supernet begins as the trained
   float backbone (`udc.warm_start`; the float model of `search.float_model`, or one
   trained with the config's `train` section into WORKDIR/float).
1. **Warm-up** (`search.warmup_epochs`): only the weights train, with uniform choices,
   so every sub-network gets trained.
2. **Search** (`search.search_epochs`): weights and choice logits train together on

       loss = task loss + lambda * E[bytes] / target,   target = (1 - margin) * budget

   with E[bytes] the size model's differentiable expectation of Vela's encoded weight
   bytes (`udc.hardware.size_model`, recalibrated on the current weights every epoch,
   plus the ones-kernel Vela adds for the global pooling, whose size follows the last
   convolution's width). lambda is a Lagrange multiplier updated by dual ascent after
   every step, `lambda <- max(0, lambda + eta * (E[bytes] / target - 1))` (eta =
   `dual_learning_rate / steps_per_epoch`): it rises while the expected size is over the
   target and falls back when it is under, so the budget is met without a hand-tuned
   penalty. The Gumbel temperature falls from start to end over the search.
   The task loss (`search.training = "sandwich"`, the default) is the soft Gumbel-softmax
   mixture's cross-entropy, which moves the choice logits as before, plus the **sandwich
   rule** on the exact children: the largest child on the labels, the smallest and
   `search.sampled_children` children sampled from the choice distribution on
   `(1 - w) * cross-entropy + w * KD(largest child)` (in-place distillation, w =
   `search.distillation_weight`; `udc.distillation`, `udc.search_space.children`).
   Why both: trained only as the mixture (`search.training = "soft"`, kept for
   comparison), the argmax network -- the one that ships -- sat at 11-33 % validation
   accuracy on Fashion-MNIST while the mixture trained at 91 %; one-shot NAS trains the
   exact children every step (BigNAS, OFA, AttentiveNAS). But children alone do not
   steer the logits: with the budget term idle, their straight-through gradients say
   nothing about a wider layer (the next layer's weights on switched-off channels are
   cut from the exact child). On one short digits search (3 KiB, 3 epochs) the int8
   accuracies were: children only 44 %, mixture only 81 %, both 86 %
   (`search.straight_through` passes the sampled children's gradients to the logits
   too; 78 % there). The budget term acts on the softmax choice probabilities.
   Batches are augmented (`augment`, `udc.augment`) and the weights' learning rate
   follows a cosine decay over all epochs (`search.lr_schedule`).
3. **Selection**: the argmax choice of every layer; its exact codec bytes (the stripped
   weights through Vela's encoder, plus the pooling weights) must be within the target,
   else **repair**: repeatedly take the single move (one layer one step narrower, sparser
   or fewer bits) that loses the least log-probability per byte saved, until it fits.
   A choice under the target is **filled** the same way in reverse (wider, denser, more
   bits, least log-probability lost per byte added) while it still fits
   (`search.fill_budget`, default on): the per-layer argmax of a search steered by the
   expected size can land far below the budget.

`udc.cli.search` then strips, fine-tunes (QAT) and exports, and checks the guarantee with
Vela itself: if Vela's `total_npu_encoded_weights` exceeds the budget, the limit is
tightened by the excess and the repair, strip, fine-tune and export run again.

A budget below the smallest network of the space (narrowest widths, highest sparsity,
fewest bits, measured by the codec on the initial weights) is rejected before training.
Checkpoints: WORKDIR/checkpoints (tf.train.Checkpoint of the supernet, both optimizers,
lambda) and WORKDIR/search_state.json (epochs done, the checkpoint they are in, history,
the config they were made with; see `udc.checkpoints`); a resume with a different config
is refused, naming the keys that differ. A step that leaves a weight, a choice logit, the
multiplier or the expected size non-finite stops the search there (`udc.epoch_loop`).
"""

import json
import math
import time
from pathlib import Path

import numpy as np

from udc import checkpoints
from udc.augment import Augmentation
from udc.compat import keras, tf
from udc.distillation import distillation_loss
from udc.epoch_loop import all_finite, epoch_batches, named, non_finite_error
from udc.errors import ConfigError, UdcError
from udc.fileio import ensure_writable_dir, write_json_atomic
from udc.hardware import size_model as sm
from udc.models.supernet import build_supernet
from udc.progress import StepProgress
from udc.search_space import SearchOptions, children, layers as search_layers
from udc.warm_start import load_float_weights

KIB = 1024
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))
STATE_FILE = "search_state.json"
# Keys that change nothing the checkpoints hold: a resume may differ in them.
_RESUME_IGNORES = ("data_dir", "download", "export.tflm_samples", "export.num_calibration",
                   "export.system_config", "export.memory_mode", "search.tensorboard", "train.")


# ------------------------------------------------------------------ config

TRAINING_RULES = ("sandwich", "soft")


LR_SCHEDULES = ("cosine", "constant")


def check_training(config) -> None:
    """ConfigError for a training rule or learning-rate schedule udc does not know (before any work)."""
    s = config.search
    if s.training not in TRAINING_RULES:
        raise ConfigError(f"unknown search.training '{s.training}'; choose one of: {', '.join(TRAINING_RULES)} "
                          "in --config.search.training")
    if s.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown learning-rate schedule '{s.lr_schedule}'; choose one of: "
                          f"{', '.join(LR_SCHEDULES)} in --config.search.lr_schedule")


def learning_rate_schedule(kind: str, rate: float, total_steps: int):
    """The weights' learning rate: "cosine" decays `rate` to 0 over `total_steps`, "constant" keeps it."""
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, max(total_steps, 1))
    return rate

def search_options(config) -> SearchOptions:
    s = config.search
    return SearchOptions.for_accelerator(
        config.export.accelerator, sparsities=tuple(s.sparsities), bits=tuple(s.bits),
        widths=None if s.widths is None else tuple(s.widths))


def budget_bytes(config) -> int:
    budget = float(config.search.budget_kb)
    if not budget > 0 or math.isinf(budget):
        raise ConfigError(f"budget_kb must be a positive number of KiB, got {budget}; set --config.budget_kb")
    return int(budget * KIB)


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def config_fingerprint(config) -> dict:
    """The config keys a checkpoint depends on (flattened, JSON-ready)."""
    flat = json.loads(json.dumps(_flatten(config.to_dict()), default=str))
    return {k: v for k, v in flat.items() if not any(k == i or (i.endswith(".") and k.startswith(i))
                                                      for i in _RESUME_IGNORES)}


def config_differences(saved: dict, current: dict) -> list:
    keys = sorted(set(saved) | set(current))
    return [f"{k}: {saved.get(k, '(absent)')} -> {current.get(k, '(absent)')}"
            for k in keys if saved.get(k) != current.get(k)]


# ------------------------------------------------------------------ sizes

class Sizes:
    """Exact (codec) and expected (size model) bytes of a supernet's choices, pooling weights included."""

    def __init__(self, supernet, accelerator):
        self.supernet, self.accelerator = supernet, accelerator
        self.layers = search_layers.searchable_layers(supernet)
        self._cache = {}
        pool = [l for l in supernet.layers if isinstance(l, keras.layers.GlobalAveragePooling2D)]
        self.pool_source = self.pool_table = None
        if pool:
            _, h, w, _ = pool[0].input_shape
            self.pool_source = search_layers.width_source(self.layers[-1]) if self.layers else None
            widths = self.pool_source.widths if self.pool_source else (int(pool[0].input_shape[-1]),)
            self.pool_table = {int(c): sm.global_pool_bytes(h, w, int(c), accelerator) for c in widths}

    def calibrate(self):
        sm.calibrate(self.layers, self.accelerator)
        self._cache.clear()

    def pool_bytes(self, choices) -> int:
        if self.pool_table is None:
            return 0
        if self.pool_source is None:
            return next(iter(self.pool_table.values()))
        return self.pool_table[choices[self.pool_source.name]["width"]]

    def expected_pool_bytes(self):
        if self.pool_table is None:
            return tf.constant(0.0)
        if self.pool_source is None:
            return tf.constant(float(next(iter(self.pool_table.values()))))
        probs = self.pool_source.choice_probabilities()["width"]
        table = tf.constant([float(self.pool_table[int(w)]) for w in self.pool_source.widths])
        return tf.reduce_sum(probs * table)

    def expected(self):
        """Differentiable E[bytes] under the current choice probabilities."""
        return sm.network_expected_bytes(self.layers) + self.expected_pool_bytes()

    def layer_bytes(self, layer, choices) -> int:
        c = choices[layer.name]
        depthwise = sm._kind(layer) == "depthwise"
        width = None if depthwise else c["width"]
        input_width = sm.input_width_of(layer, choices)
        key = (layer.name, width, input_width, c["bits"], c["sparsity"])
        if key not in self._cache:
            self._cache[key] = sm.layer_codec_bytes(layer, c["bits"], c["sparsity"], width, input_width,
                                                    self.accelerator)
        return self._cache[key]

    def exact(self, choices) -> int:
        return sum(self.layer_bytes(layer, choices) for layer in self.layers) + self.pool_bytes(choices)

    def smallest_choices(self) -> dict:
        return {layer.name: {"width": layer.widths[0], "sparsity": layer.sparsities[-1], "bits": layer.bits[0]}
                for layer in self.layers}


def _moves(layer):
    """(dimension, options, direction) of the steps that make a layer smaller."""
    moves = [("sparsity", layer.sparsities, +1), ("bits", layer.bits, -1)]
    if layer.has_width_choice and len(layer.widths) > 1:
        moves.append(("width", layer.widths, -1))
    return moves


def repair(sizes: Sizes, choices: dict, limit: int, log=print) -> dict:
    """Smallest-regret moves until the exact bytes fit `limit` (see module doc); returns new choices."""
    choices = {k: dict(v) for k, v in choices.items()}
    log_probs = _log_probs(sizes)
    total = sizes.exact(choices)
    while total > limit:
        best = None
        for layer in sizes.layers:
            for dim, options, step in _moves(layer):
                i = list(options).index(choices[layer.name][dim])
                j = i + step
                if not 0 <= j < len(options):
                    continue
                trial = {**choices, layer.name: {**choices[layer.name], dim: options[j]}}
                saved = total - sizes.exact(trial)
                if saved <= 0:
                    continue
                regret = max(float(log_probs[layer.name, dim][i] - log_probs[layer.name, dim][j]), 1e-6)
                if best is None or regret / saved < best[0]:
                    best = (regret / saved, trial, f"{layer.name}.{dim} {options[i]} -> {options[j]}", saved)
        if best is None:
            raise UdcError(f"cannot fit {limit} bytes: the smallest choices still take {total} bytes; "
                           "raise --config.budget_kb or add smaller options")
        _, choices, what, saved = best
        total -= saved
        log(f"  repair: {what} saves {saved} B -> {total} B (limit {limit} B)")
    return choices


def fill(sizes: Sizes, choices: dict, limit: int, log=print) -> dict:
    """The mirror of `repair` for a choice well under `limit`: repeatedly take the single move
    (one layer one step wider, denser or more bits) that loses the least log-probability per
    byte added, as long as the exact bytes stay within `limit`. The expected size the search
    steers is E[c_in] E[c_out]-based, so the per-layer argmax can land far below the budget
    (measured on Fashion-MNIST: 3.6 kB for a 12 KiB budget); the bytes left are accuracy left."""
    choices = {k: dict(v) for k, v in choices.items()}
    log_probs = _log_probs(sizes)
    total = sizes.exact(choices)
    moves = 0
    while True:
        best = None
        for layer in sizes.layers:
            for dim, options, step in _moves(layer):
                i = list(options).index(choices[layer.name][dim])
                j = i - step
                if not 0 <= j < len(options):
                    continue
                trial = {**choices, layer.name: {**choices[layer.name], dim: options[j]}}
                new_total = sizes.exact(trial)
                if new_total > limit:
                    continue
                regret = max(float(log_probs[layer.name, dim][i] - log_probs[layer.name, dim][j]), 1e-6)
                score = regret / max(new_total - total, 1)
                if best is None or score < best[0]:
                    best = (score, trial, f"{layer.name}.{dim} {options[i]} -> {options[j]}", new_total)
        if best is None:
            break
        _, choices, what, total = best
        moves += 1
    if moves:
        log(f"  fill: {moves} moves up to {total} B (limit {limit} B): {format_choices(choices)}")
    return choices


def _log_probs(sizes):
    return {(layer.name, dim): tf.nn.log_softmax(logits).numpy()
            for layer in sizes.layers
            for dim, logits in (("width", layer.width_logits), ("sparsity", layer.sparsity_logits),
                                ("bits", layer.bits_logits))}


def format_choices(choices: dict) -> str:
    return " ".join(f"{name} {c['width']}/{c['sparsity']:.0%}/{c['bits']}b" for name, c in choices.items())


# ------------------------------------------------------------------ the loop

def recalibrate_batch_norm(model, split, batch_size, batches=20, seed=0):
    """Moving BatchNorm statistics of the current hard sub-network (leaves the model in hard mode).

    The statistics gathered while training on soft mixtures do not fit one hard choice
    (its inputs are not scaled by fractional width masks), which leaves the argmax net
    near chance in inference; a cumulative average over a few training batches run
    through the hard net fixes that (the usual one-shot NAS recalibration). Only moving
    statistics change; weights and choices do not.
    """
    search_layers.set_hard(model, True)
    norms = [layer.bn for layer in search_layers.searchable_layers(model) if layer.bn is not None]
    momenta = [bn.momentum for bn in norms]
    try:
        for i, (x, _) in enumerate(epoch_batches(split, batch_size, seed, 10**6, batches)):
            for bn in norms:
                bn.momentum = i / (i + 1.0)  # batch i gets weight 1/(i+1): a plain average
            model(x, training=True)
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum


def _hard_accuracy(model, split, batch_size=512):
    if not len(split):
        return float("nan")
    correct = 0
    for i in range(0, len(split), batch_size):
        logits = model(split.x[i:i + batch_size], training=False)
        correct += int(np.sum(np.argmax(logits.numpy(), axis=1) == split.y[i:i + batch_size]))
    return correct / len(split)


class SupernetSearch:
    """The supernet, its optimizers and multiplier, and the warm-up/search epochs (resumable)."""

    def __init__(self, config, splits, workdir, log=print):
        self.config, self.splits, self.log = config, splits, log
        self.workdir = ensure_writable_dir(workdir)
        s = config.search
        self.options = search_options(config)
        check_training(config)
        self.budget = budget_bytes(config)
        self.target = self.budget * (1.0 - float(s.budget_margin))
        self.accelerator = config.export.accelerator
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        self.model = build_supernet(config.backbone, splits.input_shape, splits.num_classes, self.options,
                                    s.max_widths)
        self.layers = search_layers.searchable_layers(self.model)
        self.sizes = Sizes(self.model, self.accelerator)
        self.arch_vars = search_layers.architecture_variables(self.model)
        arch_ids = {id(v) for v in self.arch_vars}
        self.weight_vars = [v for v in self.model.trainable_variables if id(v) not in arch_ids]
        self.epochs = int(s.warmup_epochs) + int(s.search_epochs)
        steps = len(splits.train) // int(s.batch_size)
        if steps < 1:
            raise ConfigError(f"search.batch_size {s.batch_size} exceeds the {len(splits.train)} training "
                              "examples; lower --config.search.batch_size")
        self.steps_per_epoch = min(steps, int(s.steps_per_epoch)) if s.steps_per_epoch else steps
        self.weight_opt = keras.optimizers.Adam(learning_rate_schedule(
            s.lr_schedule, float(s.learning_rate), self.epochs * self.steps_per_epoch))
        self.arch_opt = keras.optimizers.Adam(float(s.arch_learning_rate), beta_1=0.5)
        self.weight_opt.build(self.weight_vars)
        self.arch_opt.build(self.arch_vars)
        self.lam = tf.Variable(0.0, trainable=False, name="multiplier")
        self.noise = tf.random.Generator.from_seed(config.seed)
        search_layers.use_noise_generator(self.noise)
        self.augmentation = Augmentation.from_config(config.get("augment"))
        self.eta = float(s.dual_learning_rate) / self.steps_per_epoch
        self.checkpoint = tf.train.Checkpoint(model=self.model, weight_opt=self.weight_opt,
                                              arch_opt=self.arch_opt, multiplier=self.lam)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.workdir / "checkpoints"), max_to_keep=2)
        self.state = {"epochs_done": 0, "history": [], "config": config_fingerprint(config)}
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.step = tf.function(self._step)
        self.writer = (tf.summary.create_file_writer(str(self.workdir / "tensorboard"))
                       if s.tensorboard else None)

    # --- steps -------------------------------------------------------------
    def _accuracy(self, y, logits):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32),
                                               tf.cast(y, tf.int32)), tf.float32))

    def _task_loss(self, x, y):
        """(task loss, logits whose accuracy is reported) of one batch, by the config's training rule."""
        if self.config.search.training == "soft":
            logits = self.model(x, training=True)
            return self._loss(y, logits), logits
        s = self.config.search
        weight, temperature = float(s.distillation_weight), float(s.distillation_temperature)
        loss = self._loss(y, self.model(x, training=True))  # the soft mixture: what moves the choice logits
        children.use_largest(self.layers)
        largest = self.model(x, training=True)
        loss += self._loss(y, largest)
        children.use_smallest(self.layers)
        loss += distillation_loss(y, self.model(x, training=True), largest, weight, temperature)
        for _ in range(int(s.sampled_children)):
            children.use_sampled(self.layers, straight_through=bool(s.straight_through))
            loss += distillation_loss(y, self.model(x, training=True), largest, weight, temperature)
        children.release(self.layers)
        return loss, largest

    def _step(self, x, y, searching):
        """One step of either stage (one traced function: `searching` is 0. in warm-up, 1. in search).

        In warm-up the choice logits get zero gradients (Adam leaves them where they are)
        and the multiplier does not move.
        """
        x = self.augmentation(x, self.noise)
        with tf.GradientTape() as tape:
            task, logits = self._task_loss(x, y)
            size = self.sizes.expected()
            loss = task + searching * self.lam * size / self.target
        variables = self.weight_vars + self.arch_vars
        grads = tape.gradient(loss, variables)
        n = len(self.weight_vars)
        self.weight_opt.apply_gradients(zip(grads[:n], self.weight_vars))
        self.arch_opt.apply_gradients(zip([g * searching for g in grads[n:]], self.arch_vars))
        self.lam.assign(tf.maximum(0.0, self.lam + searching * self.eta * (size / self.target - 1.0)))
        finite = all_finite(self.model.trainable_variables + [self.lam, size, task])
        return task, self._accuracy(y, logits), size, finite

    # --- checks ------------------------------------------------------------
    def check_feasible(self):
        """Rejects a budget below the smallest network of the space (before any training)."""
        self.sizes.calibrate()
        smallest = self.sizes.exact(self.sizes.smallest_choices())
        self.smallest_bytes = smallest
        if smallest > self.budget:
            raise ConfigError(
                f"budget {float(self.config.search.budget_kb):g} KiB ({self.budget} B) is below the smallest network this search "
                f"space allows: {smallest} B ({smallest / KIB:.2f} KiB encoded, narrowest widths, "
                f"{self.options.sparsities[-1]:.0%} sparsity, {self.options.bits[0]} bits); "
                f"raise --config.budget_kb to at least {math.ceil(smallest / KIB * 100) / 100:g}")
        return smallest

    def warm_start(self, float_model) -> None:
        """The supernet's weights from a trained float backbone (before the first epoch)."""
        load_float_weights(self.model, float_model)

    def restore(self) -> bool:
        """Resumes from WORKDIR if it holds a checkpoint of the same config; False if none."""
        saved = check_resumable(self.config, self.workdir)
        if saved is None:
            return False
        if saved["epochs_done"]:
            checkpoints.restore(self.checkpoint, checkpoint_of(saved, self.workdir), self.workdir)
        self.state = saved
        return True

    # --- epochs ------------------------------------------------------------
    def run(self, stop_after_epochs=None):
        """Runs the remaining warm-up and search epochs; `stop_after_epochs` simulates an interruption."""
        s = self.config.search
        warmup = int(s.warmup_epochs)
        search_steps = max(1, int(s.search_epochs) * self.steps_per_epoch)
        # The config is on record before the first epoch ends: a rerun with another config is
        # refused even if no epoch finished, or the config has none.
        write_json_atomic(self.workdir / STATE_FILE, self.state)
        while self.state["epochs_done"] < self.epochs:
            epoch = self.state["epochs_done"]
            if stop_after_epochs is not None and epoch >= stop_after_epochs:
                return False
            searching = epoch >= warmup
            self.noise.reset_from_seed(self.config.seed * 100003 + epoch)
            if searching:
                self.sizes.calibrate()
            start = time.perf_counter()
            losses, accs, sizes_seen = [], [], []
            step_times = []
            progress = StepProgress(f"epoch {epoch + 1}/{self.epochs}", self.steps_per_epoch)
            for i, (x, y) in enumerate(epoch_batches(self.splits.train, int(s.batch_size), self.config.seed, epoch,
                                                     self.steps_per_epoch)):
                if searching:
                    t = search_layers.temperature_at((epoch - warmup) * self.steps_per_epoch + i, search_steps,
                                                     float(s.start_temperature), float(s.end_temperature))
                else:
                    t = float(s.start_temperature)
                search_layers.set_temperature(self.model, t)
                t0 = time.perf_counter()
                loss, acc, size, finite = self.step(x, y, tf.constant(1.0 if searching else 0.0))
                step_times.append(time.perf_counter() - t0)
                if not finite:
                    progress.clear()
                    raise self._non_finite(epoch, i, loss, size)
                loss = float(loss)
                progress.update(i + 1, loss)
                losses.append(loss)
                accs.append(float(acc))
                sizes_seen.append(float(size))
            progress.clear()
            self._end_epoch(epoch, searching, losses, accs, sizes_seen, step_times, time.perf_counter() - start, t)
        return True

    def _non_finite(self, epoch, step, loss, size) -> UdcError:
        kept = (f"kept the last good checkpoint (after epoch {epoch}) in {self.workdir / 'checkpoints'}"
                if epoch else "no epoch had finished, so there is no checkpoint")
        values = {"loss": loss, **named(self.model.trainable_variables), "multiplier": self.lam.numpy(),
                  "expected size": size}
        return non_finite_error(f"epoch {epoch + 1} step {step + 1}", values, kept,
                                "check the training data for NaN, or lower --config.search.learning_rate or "
                                "arch_learning_rate")

    def _child_accuracy(self, use_child) -> float:
        """Validation accuracy of one exact child, with BatchNorm statistics recalibrated for it."""
        use_child(self.layers)
        try:
            self.recalibrate_batch_norm()
            return _hard_accuracy(self.model, self.splits.val)
        finally:
            children.release(self.layers)
            search_layers.set_hard(self.model, False)

    def _end_epoch(self, epoch, searching, losses, accs, sizes_seen, step_times, seconds, temperature):
        # The argmax child is the network that ships; the largest is what the others learn from.
        val = self._child_accuracy(lambda layers: None)
        val_largest = self._child_accuracy(children.use_largest)
        expected = float(self.sizes.expected())
        choices = {layer.name: layer.hard_choice() for layer in self.layers}
        record = {
            "epoch": epoch + 1, "stage": "search" if searching else "warm-up", "loss": float(np.mean(losses)),
            "accuracy": float(np.mean(accs)), "val_accuracy": val, "val_accuracy_largest": val_largest,
            "expected_bytes": expected,
            "budget_bytes": self.budget, "multiplier": float(self.lam.numpy()), "temperature": temperature,
            "seconds": seconds, "step_seconds": float(np.median(step_times[1:] or step_times)),
            "choices": choices,
        }
        self.log(f"epoch {epoch + 1}/{self.epochs} [{record['stage']}] loss {record['loss']:.4f} "
                 f"acc {record['accuracy']:.2%} val: argmax child {val:.2%}, largest {val_largest:.2%} "
                 f"E[size] {expected / KIB:.2f} KiB / budget {self.budget / KIB:g} KiB "
                 f"multiplier {record['multiplier']:.3f} T {temperature:.2f} ({seconds:.0f} s)")
        self.log(f"  choices (width/sparsity/bits): {format_choices(choices)}")
        if self.writer is not None:
            with self.writer.as_default(step=epoch + 1):
                for key in ("loss", "accuracy", "val_accuracy", "val_accuracy_largest", "expected_bytes",
                            "multiplier", "temperature"):
                    # tf.summary.scalar lives in the tensorboard package (not a dependency);
                    # this is what it writes: a float32 scalar tagged for the scalars plugin.
                    tf.summary.write(key, tf.constant(record[key], tf.float32), metadata=_SCALAR_METADATA)
            self.writer.flush()
        path = self.manager.save(checkpoint_number=epoch + 1)
        self.state["epochs_done"] = epoch + 1
        self.state["checkpoint"] = str(Path(path).relative_to(self.workdir))
        self.state["history"].append(record)
        write_json_atomic(self.workdir / STATE_FILE, self.state)

    def recalibrate_batch_norm(self, choices=None):
        """BatchNorm statistics of `choices` (default: the argmax); the choice logits are left as they were."""
        saved = [v.numpy() for v in self.arch_vars]
        if choices is not None:
            from udc.strip import set_choices

            set_choices(self.model, choices)
        recalibrate_batch_norm(self.model, self.splits.train, int(self.config.search.batch_size),
                               seed=self.config.seed)
        for v, value in zip(self.arch_vars, saved):
            v.assign(value)

    # --- selection -----------------------------------------------------------
    def select(self, limit=None) -> dict:
        """The argmax choices, repaired until their exact bytes fit `limit` (default: the target)."""
        self.sizes.calibrate()
        limit = int(self.target if limit is None else limit)
        choices = {layer.name: layer.hard_choice() for layer in self.layers}
        exact = self.sizes.exact(choices)
        self.log(f"selection: {format_choices(choices)}: {exact} B by the codec (limit {limit} B)")
        if exact > limit:
            choices = repair(self.sizes, choices, limit, self.log)
        if self.config.search.get("fill_budget", True):  # also takes back what a repair overshot
            choices = fill(self.sizes, choices, limit, self.log)
        return choices


def step_time_ratio_note(history) -> float:
    """Median search-step seconds over the epochs of the search stage."""
    times = [h["step_seconds"] for h in history if h["stage"] == "search"]
    return float(np.median(times)) if times else float("nan")


def check_resumable(config, workdir):
    """The saved state of WORKDIR (None if none); ConfigError if it was made with another config,
    UdcError if the state or its checkpoint cannot be read (both are checked before any slow work)."""
    saved = read_state(workdir)
    if saved is None:
        return None
    if saved["epochs_done"]:
        checkpoints.check_readable(checkpoint_of(saved, workdir), workdir)
    differences = config_differences(saved["config"], config_fingerprint(config))
    if differences:
        raise ConfigError(
            f"{workdir} holds a search made with a different config ({'; '.join(differences)}); "
            "use another --workdir or the same config to resume")
    return saved


def read_state(workdir):
    return checkpoints.read_json(Path(workdir) / STATE_FILE, workdir, keys=("epochs_done", "history", "config"))


def checkpoint_of(state, workdir) -> Path:
    """The checkpoint a state was written with (states older than the "checkpoint" key: its epoch's number)."""
    return Path(workdir) / state.get("checkpoint", f"checkpoints/ckpt-{state['epochs_done']}")
