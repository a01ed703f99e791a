"""What each pass of the supernet's training step costs: the step timed with each pass left out.

    python tools/step_passes.py [--config=configs/fashion_mnist.py]

The sandwich rule's step (`udc.search`) runs four forward and backward passes on one batch:
the soft mixture, the largest child, the smallest and one sampled child (both distilled from
the largest). This times the same step with all four and with each one left out (median of
2 x 30 steps, after 3 warm-up steps each), on the config's first training batch. Run it on an
idle machine, alone; it prints milliseconds per step as JSON.
"""

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.compat import tf  # noqa: E402
from udc.data import load_splits  # noqa: E402
from udc.search.loop import SupernetSearch  # noqa: E402

PASSES = ("none", "mixture", "smallest", "sampled")  # which pass is left out ("none": all four run)


def step_without(search, skip):
    """A traced training step of `search`'s supernet with pass `skip` left out."""

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss, _ = search.training_loss(x, y, without=(skip,))
        search.weight_opt.apply_gradients(zip(tape.gradient(loss, search.weight_vars), search.weight_vars))
        return loss

    return step


def median_seconds(fn, steps=30, warm_up=3):
    for _ in range(warm_up):
        float(fn())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fashion_mnist.py"))
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("config", args.config)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    splits = load_splits(config)
    batch = int(config.search.batch_size)
    x, y = splits.train.x[:batch], splits.train.y[:batch]
    search = SupernetSearch(config, splits, tempfile.mkdtemp(), log=lambda _: None)
    steps = {skip: step_without(search, skip) for skip in PASSES}
    seconds = {skip: [] for skip in PASSES}
    for _ in range(2):
        for skip, step in steps.items():
            seconds[skip].append(median_seconds(lambda: step(x, y)))
    print(json.dumps({f"without_{skip}_ms" if skip != "none" else "all_four_ms": round(1e3 * float(np.mean(v)), 1)
                      for skip, v in seconds.items()}))


if __name__ == "__main__":
    main()
