"""What udc's own training loops (search, QAT fine-tune) share: batches per epoch, the learning-rate
schedule, the NaN guard.

Batches: the data order of an epoch is a function of (seed, epoch) alone, so an epoch run
after a resume sees the same batches as in an uninterrupted run.

NaN guard: the traced step returns one bool, `all_finite` over every trainable variable
and the step's scalars, and the loop stops at the first step where it is false. The loss
alone is not enough: where oneDNN fuses conv + BatchNorm + ReLU, the fused ReLU turns NaN
into 0, so the loss stays finite for a few steps while the weights are already NaN.
"""

import numpy as np

from udc.compat import keras, tf
from udc.errors import UdcError

LR_SCHEDULES = ("cosine", "constant")


def epoch_batches(split, batch_size, seed, epoch, steps=None):
    """The batches of one epoch in the order of (seed, epoch); whole batches only (one traced shape)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(split))
    n = len(order) // batch_size
    if steps:
        n = min(n, steps)
    for i in range(n):
        idx = np.sort(order[i * batch_size:(i + 1) * batch_size])
        yield split.x[idx], split.y[idx]


def learning_rate_schedule(kind: str, rate: float, total_steps: int, warmup_steps: int = 0):
    """An optimizer's learning rate: "cosine" rises linearly from 0 to `rate` over `warmup_steps`, then
    decays to 0 by `total_steps` (the optimizer's step count, which its checkpoint keeps, so a resumed
    run continues the curve); "constant" keeps `rate`."""
    if kind != "cosine":
        return rate
    warmup_steps = min(warmup_steps, total_steps - 1)
    if warmup_steps > 0:
        return keras.optimizers.schedules.CosineDecay(0.0, total_steps - warmup_steps, warmup_target=rate,
                                                      warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(rate, max(total_steps, 1))


def all_finite(tensors):
    """True if every value of every tensor is finite: one cheap reduction inside a traced step."""
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors]))


def _display_name(value) -> str:
    return value.name.split(":")[0] if hasattr(value, "name") else str(value)


def non_finite_error(where, named_values, kept, fix) -> UdcError:
    """The one-line error for a step that left `named_values` ({name: tensor}) non-finite somewhere."""
    bad = [name for name, value in named_values.items() if not np.all(np.isfinite(np.asarray(value)))]
    shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
    return UdcError(f"{shown or 'a value'} became non-finite (NaN or inf) at {where}; stopped and {kept}; "
                    f"{fix} and rerun to resume")


def named(variables) -> dict:
    """{display name: value} of tf variables, for `non_finite_error`."""
    return {_display_name(v): v.numpy() for v in variables}
