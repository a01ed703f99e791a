"""Members for a cascade, made with udc: UDC searches of one config at several budgets, from one supernet
or from one per seed (`search_members`), or the `fmnist_cnn` backbone trained at several width multipliers
(`train_width_members`), each exported as an int8 .tflite that `udc.ensemble.load_members` reads."""

import copy
from pathlib import Path

import numpy as np

from udc.compat import keras
from udc.data import split_seed
from udc.deploy.convert import convert_to_int8
from udc.errors import UdcError
from udc.fileio import write_bytes_atomic
from udc.models import fmnist_cnn
from udc.models.fmnist_cnn import DEFAULT_WIDTHS
from udc.search.state import check_resumable_workdir
from udc.workflows.pipeline import budget_plan, check_budgets, search_and_export


def scaled_widths(multiplier: float, base=None) -> tuple:
    base = base or DEFAULT_WIDTHS
    return tuple(max(1, int(round(w * multiplier))) for w in base)


def train_width_members(splits, multipliers=(0.25, 0.5, 1.0), out_dir="members", epochs: int = 3,
                        batch_size: int = 128, learning_rate: float = 2e-3, seed: int = 0,
                        calibration_size: int = 500, verbose: int = 0, seeds=None) -> list[str]:
    """Trains `fmnist_cnn` at each width multiplier on `splits.train`, exports int8 .tflite files.

    Member i is seeded with `seed + i`, or with `seeds[i]` when given (then the file
    name ends in `_s<seed>`, so several members of one width can live side by side).
    Returns the paths of the files in the order of `multipliers`. The validation and
    test splits are not seen, so they stay fair for calibrating and reporting a cascade.
    """
    if seeds is not None and len(seeds) != len(multipliers):
        raise UdcError(f"{len(multipliers)} width multipliers but {len(seeds)} seeds")
    out_dir = Path(out_dir)
    paths = []
    for i, multiplier in enumerate(multipliers):
        widths = scaled_widths(multiplier)
        member_seed = int(seeds[i]) if seeds is not None else seed + i
        keras.utils.set_random_seed(member_seed)
        model = fmnist_cnn(splits.input_shape, splits.num_classes, widths=widths)
        steps = epochs * int(np.ceil(len(splits.train) / batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps))
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(splits.train.tf_dataset(batch_size, shuffle=True, seed=member_seed),
                  epochs=epochs, verbose=verbose)
        data = convert_to_int8(model, splits.train.x[:calibration_size])
        name = f"fmnist_cnn_w{multiplier:g}".replace(".", "p") + (f"_s{member_seed}" if seeds is not None else "")
        paths.append(str(write_bytes_atomic(out_dir / f"{name}.tflite", data)))
        del model
        keras.backend.clear_session()
    return paths


def search_members(config, budgets_kb, workdir, log=print, supernet_seeds=None) -> list[str]:
    """Runs the UDC search of `config` at each budget in WORKDIR/udc_<K>kb; returns the
    model.tflite paths, smallest budget first.

    With `supernet_seeds`, each seed trains a supernet of its own in WORKDIR/seed_<S> and is searched at every
    budget there (paths by budget, then seed); all keep the config's train/validation split (`split_seed`), so
    the cascade is calibrated on images none of them trained on. Members of separate supernets err more
    differently than budgets of one, whose shared weights make their errors alike: on Fashion-MNIST pairs of
    two supernets pooled to +0.31 points over the better member on average, pairs of one to +0.09
    (benchmarks/fashion_mnist/ensemble_finetune6/gain_census.md).

    A budget whose directory holds a finished search of the same config is not searched
    again; an interrupted one resumes. A directory of another config is refused before
    any search starts.
    """
    check_budgets(budgets_kb)
    plan = []
    for seed_config, seed_dir in _supernets(config, workdir, supernet_seeds):
        plan += budget_plan(seed_config, seed_dir, sorted(budgets_kb))
    plan.sort(key=lambda step: step[0])  # stable: each budget's seeds in the order given
    for _, budget_config, budget_dir in plan:
        check_resumable_workdir(budget_config, budget_dir)  # before any slow work
    for kb, budget_config, budget_dir in plan:
        log(f"== UDC search at {kb:g} KiB in {budget_dir}")
        search_and_export(budget_config, budget_dir, log=log)  # a finished one gives back its report at once
    return [str(w / "model.tflite") for _, _, w in plan]


def _supernets(config, workdir, seeds) -> list:
    """[(config, workdir)] of each supernet: the config in WORKDIR, or one per seed in WORKDIR/seed_<S>."""
    if not seeds:
        return [(config, Path(workdir))]
    if len(set(seeds)) != len(seeds):
        raise UdcError(f"supernet_seeds lists a seed twice ({','.join(map(str, seeds))}); each seed is one supernet")
    pinned = split_seed(config)
    made = []
    for seed in seeds:
        seed_config = copy.deepcopy(config)
        seed_config.seed = int(seed)
        seed_config.split_seed = pinned
        made.append((seed_config, Path(workdir) / f"seed_{int(seed)}"))
    return made
