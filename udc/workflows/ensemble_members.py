"""Members for a cascade, made with udc: UDC searches of one config at several budgets, from one supernet
or from one per seed, some also fine-tuned again with augmentation (`search_members`), or the `fmnist_cnn`
backbone trained at several width multipliers (`train_width_members`), each exported as an int8 .tflite that
`udc.ensemble.load_members` reads."""

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
from udc.search.state import check_resumable_workdir, fork_search
from udc.training.augment import Augmentation
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


AUGMENTED_SUFFIX = "_augmented"  # WORKDIR/udc_<K>kb_augmented: the udc_<K>kb search fine-tuned with augmentation


def search_members(config, budgets_kb, workdir, log=print, supernet_seeds=None, augmented_budgets_kb=(),
                   augmented_finetune_epochs=15) -> list[str]:
    """Runs the UDC search of `config` at each budget in WORKDIR/udc_<K>kb; returns the
    model.tflite paths, smallest budget first.

    With `supernet_seeds`, each seed trains a supernet of its own in WORKDIR/seed_<S> and is searched at every
    budget there (paths by budget, then seed); all keep the config's train/validation split (`split_seed`), so
    the cascade is calibrated on images none of them trained on. Members of separate supernets err more
    differently than budgets of one, whose shared weights make their errors alike: on Fashion-MNIST pairs of
    two supernets pooled to +0.31 points over the better member on average, pairs of one to +0.09
    (benchmarks/fashion_mnist/ensemble_finetune6/gain_census.md).

    Each search at a budget of `augmented_budgets_kb` also gives a second member: the same search fine-tuned
    again for `augmented_finetune_epochs` with the config's `augment` section (shifts, flips) in
    udc_<K>kb_augmented beside it (`udc.search.state.fork_search`: no second search), after every plain member
    (same order). A member fine-tuned with augmentation errs unlike one fine-tuned without: on Fashion-MNIST
    (split 1, the 64 KiB searches of three supernets, 6 plain epochs against 15 augmented) a plain and an
    augmented member of two supernets pooled to +0.70 over the better one on average, two plain ones to +0.35,
    and a cascade of both kinds met every goal of the ensemble benchmark
    (benchmarks/fashion_mnist/ensemble_finetune6/augmented_members). The augmented fine-tune needs the longer
    schedule: 6 epochs left a 64 KiB member 0.9 points below its plain fine-tune, 15 reached it.

    A budget whose directory holds a finished search of the same config is not searched
    again; an interrupted one resumes. A directory of another config is refused before
    any search starts.
    """
    check_budgets(budgets_kb)
    plan = []
    for seed_config, seed_dir in _supernets(config, workdir, supernet_seeds):
        plan += budget_plan(seed_config, seed_dir, sorted(budgets_kb))
    plan.sort(key=lambda step: step[0])  # stable: each budget's seeds in the order given
    augmented = _augmented_plan(config, plan, budgets_kb, augmented_budgets_kb, augmented_finetune_epochs)
    for _, budget_config, budget_dir in plan + [step[:3] for step in augmented]:
        check_resumable_workdir(budget_config, budget_dir)  # before any slow work
    for kb, budget_config, budget_dir in plan:
        log(f"== UDC search at {kb:g} KiB in {budget_dir}")
        search_and_export(budget_config, budget_dir, log=log)  # a finished one gives back its report at once
    for kb, augmented_config, augmented_dir, searched_dir in augmented:
        log(f"== the {kb:g} KiB search of {searched_dir} fine-tuned with augmentation in {augmented_dir}")
        fork_search(searched_dir, augmented_dir)
        search_and_export(augmented_config, augmented_dir, log=log)
    return [str(w / "model.tflite") for _, _, w in plan] + [str(step[2] / "model.tflite") for step in augmented]


def _augmented_plan(config, plan, budgets_kb, augmented_budgets_kb, epochs) -> list:
    """[(budget KiB, its config, its workdir, the searched workdir it forks)] of the augmented fine-tunes."""
    if not augmented_budgets_kb:
        return []
    wanted = set(map(float, augmented_budgets_kb))
    unsearched = sorted(wanted - set(map(float, budgets_kb)))
    if unsearched:
        raise UdcError(f"augmented budgets {', '.join(f'{kb:g}' for kb in unsearched)} KiB are not among the "
                       "searched budgets; list each in --budgets_kb too (its search is fine-tuned again)")
    if config.search.finetune_augment:
        raise UdcError("the config already fine-tunes every member with augmentation "
                       "(search.finetune_augment=True); drop --augmented_budgets_kb or set it to False")
    if not Augmentation.from_config(config.get("augment")).active:
        raise UdcError("the config's augment section does nothing (shift 0, no flips), so augmented members would "
                       "repeat the plain ones; set e.g. --config.augment.shift=2")
    if epochs < 1:
        raise UdcError(f"augmented_finetune_epochs must be at least 1, got {epochs}")
    steps = []
    for kb, budget_config, budget_dir in plan:
        if float(kb) in wanted:
            augmented_config = copy.deepcopy(budget_config)
            augmented_config.search.finetune_augment = True
            augmented_config.search.finetune_epochs = int(epochs)
            steps.append((kb, augmented_config, budget_dir.with_name(budget_dir.name + AUGMENTED_SUFFIX), budget_dir))
    return steps


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
