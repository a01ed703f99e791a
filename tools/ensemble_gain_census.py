"""How much does a full ensemble of udc models gain over its best member? benchmarks/.../gain_census.{json,md}.

  python tools/ensemble_gain_census.py --config.split_seed=2 --pool=runs/a/udc_32kb/model.tflite,... \\
      --output_dir=benchmarks/fashion_mnist/ensemble_finetune6

Issue 14 asks the full ensemble to beat its best member by 0.5 points. One cascade answers that for one subset,
chosen on validation; this answers it for every subset of 2..--max_k members of a pool of udc-search exports
(each WORKDIR/model.tflite; the supernet it came from is the search's workdir, the folder above WORKDIR):

- each pair's gain on test (its log-linear pool, weights fitted on validation as `udc.ensemble` fits a stage,
  against the pair's more accurate member on test), split by whether the two came from one supernet or two, and
  the pairs of two supernets by their members' budgets (WORKDIR's folder name, e.g. udc_8kb): how the gain
  depends on how strong and how alike the two members are;
- per subset size, the mean and largest test gain over all subsets, the share of subsets at +0.5 or more, the
  mean standard error of one subset's test gain (a paired difference on the test images: how far one measured
  gain may sit from the subset's true gain), and the test gain of the subset that is most accurate on validation
  (what a selection on validation would find).

Every member's .tflite runs once on the config's validation and test splits (LiteRT); accuracies only, no costs.
"""

import itertools
import re
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's udc, not an installed one

import udc  # noqa: E402,F401
from absl import app, flags  # noqa: E402

from udc.cli.common import loaded_config  # noqa: E402
from udc.cli.flags import define_config_flag  # noqa: E402

CONFIG = define_config_flag("configs/fashion_mnist.py")
flags.DEFINE_list("pool", None, "udc-search exports (WORKDIR/model.tflite) of one split.", required=True)
flags.DEFINE_integer("max_k", 4, "Largest subset size (all subsets of 2..max_k members are pooled).")
flags.DEFINE_string("output_dir", "benchmarks/fashion_mnist", "Where gain_census.{json,md} go.")
FLAGS = flags.FLAGS

GOAL_GAIN_POINTS = 0.5


def supernet_of(path: str) -> str:
    """The search workdir a udc-search export came from (WORKDIR/udc_<K>kb/model.tflite -> WORKDIR)."""
    return Path(path).resolve().parent.parent.name


def member_name(path: str) -> str:
    p = Path(path).resolve()
    return f"{p.parent.parent.name}/{p.parent.name}"


def pool_gain(val_probs, test_probs, yv, yt) -> dict:
    """The members' log-linear pool (weights fitted on validation) against its best member, on test."""
    import numpy as np

    from udc.ensemble.combination import fit_pool, pooled

    weights = fit_pool(val_probs, yv)
    right = [p.argmax(1) == yt for p in test_probs]
    best = int(np.argmax([r.mean() for r in right]))
    full_right = pooled(test_probs, weights).argmax(1) == yt
    full_val = 100 * float(np.mean(pooled(val_probs, weights).argmax(1) == yv))
    # The gain is a paired difference on the same test images: its standard error is that of the per-image
    # difference (full right - best member right), which only the images the two disagree on feed.
    diff = full_right.astype(np.float64) - right[best]
    return {"full_val": full_val, "full_test": 100 * float(full_right.mean()),
            "best_member_test": 100 * float(right[best].mean()), "gain": 100 * float(diff.mean()),
            "gain_standard_error": 100 * float(diff.std(ddof=1) / np.sqrt(len(diff)))}


def census(names, supernets, val_probs, test_probs, yv, yt, max_k: int) -> dict:
    import numpy as np

    pairs, sizes = [], []
    for k in range(2, max_k + 1):
        rows = []
        for subset in itertools.combinations(range(len(names)), k):
            g = pool_gain([val_probs[i] for i in subset], [test_probs[i] for i in subset], yv, yt)
            rows.append({"members": [names[i] for i in subset], **g})
            if k == 2:
                pairs.append({**rows[-1], "same_supernet": supernets[subset[0]] == supernets[subset[1]]})
        gains = np.array([r["gain"] for r in rows])
        by_val = max(rows, key=lambda r: r["full_val"])
        sizes.append({"k": k, "subsets": len(rows), "mean_gain": float(gains.mean()), "max_gain": float(gains.max()),
                      "mean_gain_standard_error": float(np.mean([r["gain_standard_error"] for r in rows])),
                      "share_at_goal": float(np.mean(gains >= GOAL_GAIN_POINTS - 1e-9)), "chosen_on_val": by_val})
        print(f"{k} members: {len(rows)} subsets, mean gain {gains.mean():+.2f}, max {gains.max():+.2f}, "
            f"most accurate on validation {by_val['gain']:+.2f}", flush=True)
    return {"pairs": pairs, "sizes": sizes}


def _budget_order(search: str):
    """Sort key of a search folder's name: udc_8kb before udc_32kb and udc_32kb_aug15 (by the first number), names
    without a number last."""
    number = re.search(r"\d+", search)
    return (0, int(number.group()), search) if number else (1, 0, search)


def markdown(r: dict) -> str:
    import numpy as np

    lines = ["# Full-ensemble gain over the best member, every subset of a pool", "", "Made with:", "", "```",
             r["command"], "```", "",
             f"Machine: {r['machine']}. Load average (1, 5, 15 min) before {r['load_average']['before']}, after "
             f"{r['load_average']['after']}; {r['seconds']:.0f} s. Accuracies of the int8 .tflite files (LiteRT), "
             f"{r['val_images']:,} validation and {r['test_images']:,} test images. A subset's full ensemble is "
             "the log-linear pool of its members with weights fitted on validation (`udc.ensemble.combination`); "
             "its gain is its test accuracy minus its best member's, in points.", "",
             "## Members", "", "| member | val | test |", "|---|---|---|"]
    lines += [f"| {m['name']} | {m['val']:.2f} % | {m['test']:.2f} % |" for m in r["members"]]
    lines += ["", "## Pairs: one supernet or two", "", "| pairs | count | mean gain | min | max |", "|---|---|---|---|---|"]
    for same in (True, False):
        g = np.array([p["gain"] for p in r["census"]["pairs"] if p["same_supernet"] == same])
        if len(g):
            lines.append(f"| {'one supernet' if same else 'two supernets'} | {len(g)} | {g.mean():+.2f} | "
                         f"{g.min():+.2f} | {g.max():+.2f} |")
    lines += ["", "## Pairs of two supernets, by the members' budgets", "",
              "| budgets | pairs | mean gain | min | max | mean member test accuracy |", "|---|---|---|---|---|---|"]
    test_accuracy = {m["name"]: m["test"] for m in r["members"]}
    by_budgets = {}
    for p in r["census"]["pairs"]:
        if not p["same_supernet"]:
            budgets = tuple(sorted((name.split("/")[-1] for name in p["members"]), key=_budget_order))
            by_budgets.setdefault(budgets, []).append(p)
    for budgets in sorted(by_budgets, key=lambda names: [_budget_order(name) for name in names]):
        pairs = by_budgets[budgets]
        g = np.array([p["gain"] for p in pairs])
        accuracy = np.mean([test_accuracy[m] for p in pairs for m in p["members"]])
        lines.append(f"| {' + '.join(budgets)} | {len(g)} | {g.mean():+.2f} | {g.min():+.2f} | {g.max():+.2f} | "
                     f"{accuracy:.2f} % |")
    lines += ["", "## Subsets by size", "",
              f"| members | subsets | mean gain | max gain | share at +{GOAL_GAIN_POINTS} or more | standard error of one "
              "subset's gain | most accurate on validation: members, gain on test |", "|---|---|---|---|---|---|---|"]
    for s in r["census"]["sizes"]:
        v = s["chosen_on_val"]
        lines.append(f"| {s['k']} | {s['subsets']} | {s['mean_gain']:+.2f} | {s['max_gain']:+.2f} | "
                     f"{100 * s['share_at_goal']:.0f} % | {s['mean_gain_standard_error']:.2f} | "
                     f"{', '.join(v['members'])}: {v['gain']:+.2f} ± {v['gain_standard_error']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    import numpy as np

    from udc.data import load_splits
    from udc.ensemble import load_members
    from udc.fileio import write_json_atomic, write_text_atomic
    from udc.report.machine import load_average, describe_machine

    command = " ".join(["python", "tools/ensemble_gain_census.py"] + [shlex.quote(a) for a in sys.argv[1:]])
    load_before, start = load_average(), time.time()
    splits = load_splits(loaded_config(CONFIG))
    members = load_members(FLAGS.pool, target=None, measure_latency=False)
    names = [member_name(p) for p in FLAGS.pool]
    val_probs = [m.probabilities(splits.val.x) for m in members]
    test_probs = [m.probabilities(splits.test.x) for m in members]
    r = {"command": command, "machine": describe_machine(), "val_images": len(splits.val),
         "test_images": len(splits.test),
         "members": [{"name": n, "val": 100 * float(np.mean(pv.argmax(1) == splits.val.y)),
                      "test": 100 * float(np.mean(pt.argmax(1) == splits.test.y))}
                     for n, pv, pt in zip(names, val_probs, test_probs)],
         "census": census(names, [supernet_of(p) for p in FLAGS.pool], val_probs, test_probs, splits.val.y,
                          splits.test.y, FLAGS.max_k)}
    r["seconds"] = time.time() - start
    r["load_average"] = {"before": load_before, "after": load_average()}
    out = Path(FLAGS.output_dir)
    write_json_atomic(out / "gain_census.json", r)
    write_text_atomic(out / "gain_census.md", markdown(r))
    print(f"wrote {out / 'gain_census.md'}")


if __name__ == "__main__":
    app.run(main)
