"""Do ensemble members err differently when trained to? benchmarks/fashion_mnist/ensemble_member_rules.{json,md}.

  python tools/ensemble_member_rules.py --config.split_seed=2 --child=runs/pool3/fmnist_cnn_seed6/udc_64kb \\
      --rules=plain:11:2,plain:12:2,joint=1:11:2,ncl=1:11:2,plain:11:6,plain:12:6

The issue asks for members that add something, for example through a diversity term between members. This
fine-tunes siblings of one searched child (a udc-search WORKDIR: stripped.keras, arch_spec.json, model_qat.keras,
model.tflite, report.json): the same stripped network, bits and zeros, the QAT fine-tune of the search
(`udc.deploy.finetune`, its learning rate and schedule, the sizes kept on the config's target), under one rule
each, given as kind[=weight]:seed:epochs:

- plain: the search's own loss, cross-entropy; only the seed (batch order) differs from the searched child;
- joint=b: cross-entropy + b * cross-entropy of the product of the sibling and the searched child (softmax of
  the sum of their log-probabilities): the sibling learns where the pair is wrong, which is where the child is;
- ncl=l: cross-entropy - l * squared distance between the sibling's and the child's probabilities (negative
  correlation learning, Liu and Yao 1999).

The searched child's QAT model is the fixed reference in the step (`Recipe.loss` with the child as teacher).
Each sibling is converted to int8 and its .tflite run on the validation and test splits (kept in --work_dir
and reused); the report gives each sibling's accuracy, the log-linear pool of the child and each sibling
(equal weights, and weights fitted on validation as udc.ensemble does), and the pools of the plain siblings.
"""

import itertools
import json
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
flags.DEFINE_string("child", None, "The searched child: a udc-search WORKDIR.", required=True)
flags.DEFINE_list("rules", ["plain:11:2", "joint=1:11:2", "ncl=1:11:2"], "Siblings as kind[=weight]:seed:epochs.")
flags.DEFINE_string("work_dir", "runs/ensemble_member_rules", "The siblings' .tflite files.")
flags.DEFINE_string("output_dir", "benchmarks/fashion_mnist", "Where ensemble_member_rules.{json,md} go.")
FLAGS = flags.FLAGS

KINDS = ("plain", "joint", "ncl")


def parse_rule(text: str) -> dict:
    try:
        kind_weight, seed, epochs = text.split(":")
        kind, _, weight = kind_weight.partition("=")
        rule = {"kind": kind, "weight": float(weight or 0.0), "seed": int(seed), "epochs": int(epochs)}
    except ValueError:
        raise SystemExit(f"--rules takes kind[=weight]:seed:epochs, e.g. joint=1:11:2; got {text}") from None
    if kind not in KINDS or (kind != "plain") != (rule["weight"] > 0):
        raise SystemExit(f"rule {text}: the kind is one of {', '.join(KINDS)}, with a weight > 0 except plain")
    return rule


def rule_loss(rule):
    """The rule's loss(labels, logits, reference_logits), or None for plain cross-entropy."""
    from udc.compat import tf

    weight = rule["weight"]

    def cross_entropy(labels, logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), logits))

    def joint(labels, logits, reference):
        product = tf.nn.log_softmax(logits) + tf.nn.log_softmax(tf.stop_gradient(reference))
        return cross_entropy(labels, logits) + weight * cross_entropy(labels, product)

    def ncl(labels, logits, reference):
        distance = tf.reduce_sum((tf.nn.softmax(logits) - tf.nn.softmax(tf.stop_gradient(reference))) ** 2, axis=-1)
        return cross_entropy(labels, logits) - weight * tf.reduce_mean(distance)

    return {"plain": None, "joint": joint, "ncl": ncl}[rule["kind"]]


def train_sibling(config, splits, child: Path, rule, reference, target):
    """The int8 .tflite bytes of the child's stripped network fine-tuned under `rule`."""
    import dataclasses

    import numpy as np

    from udc.arch import ArchSpec
    from udc.deploy.convert import convert_to_int8
    from udc.deploy.finetune import finetune
    from udc.deploy.model_io import load_model
    from udc.deploy.ship import finetune_recipe

    plain = load_model(child / "stripped.keras")
    bits = ArchSpec.load(child / "arch_spec.json").bits()
    # strip zeroes what it prunes; the masks keep those zeros (a trained weight is never exactly 0 by chance)
    masks = {name: (plain.get_layer(name).get_weights()[0] != 0).astype(np.float32) for name in bits}
    loss = rule_loss(rule)
    recipe = finetune_recipe(config, None)
    if loss is not None:
        recipe = dataclasses.replace(recipe, teacher=reference, loss=loss)
    s = config.search
    qat = finetune(plain, bits, masks, splits, epochs=rule["epochs"], learning_rate=float(s.finetune_learning_rate),
                   batch_size=int(s.batch_size), seed=rule["seed"], recipe=recipe, keep_sizes_for=target)
    return convert_to_int8(qat, splits.train.x[:config.export.num_calibration])


def accuracy(probs, labels) -> float:
    return float((probs.argmax(axis=1) == labels).mean())


def pool_accuracies(probs, names, labels_val, labels_test) -> dict:
    """The log-linear pool of `names`: equal weights on validation and test, validation-fitted weights on test."""
    import numpy as np

    from udc.ensemble.combination import fit_pool, pooled

    val = [probs[n]["val"] for n in names]
    test = [probs[n]["test"] for n in names]
    weights = fit_pool(val, labels_val)
    ones = np.ones(len(names))
    return {"members": list(names), "val_equal": accuracy(pooled(val, ones), labels_val),
            "test_equal": accuracy(pooled(test, ones), labels_test),
            "fitted_weights": [round(float(w), 3) for w in weights],
            "test_fitted": accuracy(pooled(test, weights), labels_test),
            "best_member_test": max(accuracy(p, labels_test) for p in test)}


def main(argv):
    del argv
    from udc.data import load_splits
    from udc.deploy.interpreter import TfliteClassifier
    from udc.deploy.model_io import load_model
    from udc.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
    from udc.report.machine import describe_machine, load_average
    from udc.targets import target_of

    load_before = load_average()
    started = time.time()
    config = loaded_config(CONFIG)
    rules = {text: parse_rule(text) for text in FLAGS.rules}
    child = Path(FLAGS.child)
    missing = [n for n in ("stripped.keras", "arch_spec.json", "model_qat.keras", "model.tflite")
               if not (child / n).is_file()]
    if missing:
        raise SystemExit(f"--child {child} lacks {', '.join(missing)}: give a finished udc-search WORKDIR")
    splits = load_splits(config)
    target = target_of(config)
    reference = load_model(child / "model_qat.keras")
    work_dir = Path(FLAGS.work_dir)
    files = {"child": child / "model.tflite"}
    seconds = {}
    for text, rule in rules.items():
        path = work_dir / (text.replace(":", "_").replace("=", "") + ".tflite")
        settings_path = path.with_suffix(".json")
        settings = {"rule": rule, "child": str(child.resolve()), "split_seed": config.split_seed,
                    "seed_of_config": config.seed}
        if not (path.is_file() and settings_path.is_file()
                and json.loads(settings_path.read_text())["settings"] == settings):
            print(f"== sibling {text}", flush=True)
            start = time.time()
            write_bytes_atomic(path, train_sibling(config, splits, child, rule, reference, target))
            write_json_atomic(settings_path, {"settings": settings, "seconds": round(time.time() - start, 1)})
        seconds[text] = json.loads(settings_path.read_text())["seconds"]
        files[text] = path

    probs, vela = {}, {}
    for name, path in files.items():
        data = path.read_bytes()
        classifier = TfliteClassifier(data, name)
        probs[name] = {part: classifier.probabilities(split.x) for part, split in (("val", splits.val),
                                                                                    ("test", splits.test))}
        compiled = target.compile(data, name)
        vela[name] = {"encoded_weight_bytes": compiled.encoded_weight_bytes, "cycles": compiled.cycles}
    yv, yt = splits.val.y, splits.test.y
    singles = {name: {"val": accuracy(p["val"], yv), "test": accuracy(p["test"], yt)} for name, p in probs.items()}
    pairs = {text: pool_accuracies(probs, ["child", text], yv, yt) for text in rules}
    plain = [t for t, r in rules.items() if r["kind"] == "plain"]
    groups = [pool_accuracies(probs, names, yv, yt)
              for k in range(2, len(plain) + 1) for names in itertools.combinations(plain, k)]
    groups += [pool_accuracies(probs, ["child"] + plain, yv, yt)] if len(plain) > 1 else []

    command = "python tools/ensemble_member_rules.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = {"command": command, "machine": describe_machine(), "load_before": load_before,
              "load_after": load_average(), "seconds": round(time.time() - started, 1), "child": str(child),
              "images": {"val": len(splits.val), "test": len(splits.test)},
              "child_report_test_accuracy": json.loads((child / "report.json").read_text())["accuracy"]["int8_tflite"],
              "target": target.name, "rules": rules, "sibling_seconds": seconds, "single": singles, "vela": vela,
              "pairs_with_child": pairs, "plain_groups": groups}
    out = Path(FLAGS.output_dir)
    write_json_atomic(out / "ensemble_member_rules.json", result)
    write_text_atomic(out / "ensemble_member_rules.md", markdown(result))
    print(f"wrote {out / 'ensemble_member_rules.md'}")


def markdown(r) -> str:
    pct = lambda x: f"{100 * x:.2f} %"  # noqa: E731
    lines = ["# Ensemble members trained to differ", "", "Made with:", "", "```", r["command"], "```", "",
             f"Machine: {r['machine']}. Load average (1, 5, 15 min) before {r['load_before']}, after "
             f"{r['load_after']}; {r['seconds']:.0f} s in all. Accuracies are of the int8 .tflite files, run with "
             f"LiteRT on the validation split ({r['images']['val']:,} held-out training images) and the test split "
             f"({r['images']['test']:,}).", "",
             f"The reference is the searched child `{r['child']}` with its search's own fine-tune (test "
             f"{pct(r['single']['child']['test'])}, {r['vela']['child']['encoded_weight_bytes']:,} B of encoded "
             f"weights and {r['vela']['child']['cycles']:,} cycles by Vela on {r['target']}). Each sibling starts "
             "from the same stripped network.", "",
             "| sibling (kind=weight:seed:epochs) | fine-tune s | Vela B, cycles | val | test | pool with the child: "
             "val, test (equal) | test (weights fitted on val) | pool - best of the two, test |",
             "|---|---|---|---|---|---|---|---|"]
    for text, pair in r["pairs_with_child"].items():
        single, vela = r["single"][text], r["vela"][text]
        lines.append(f"| {text} | {r['sibling_seconds'][text]:.0f} | {vela['encoded_weight_bytes']:,}, "
                     f"{vela['cycles']:,} | {pct(single['val'])} | {pct(single['test'])} | "
                     f"{pct(pair['val_equal'])}, {pct(pair['test_equal'])} | {pct(pair['test_fitted'])} "
                     f"({', '.join(map(str, pair['fitted_weights']))}) | "
                     f"{100 * (pair['test_equal'] - pair['best_member_test']):+.2f} |")
    if r["plain_groups"]:
        lines += ["", "Pools of plain siblings (and the child):", "",
                  "| members | val (equal) | test (equal) | test (fitted) | best member, test | pool - best, test |",
                  "|---|---|---|---|---|---|"]
        for g in r["plain_groups"]:
            lines.append(f"| {', '.join(g['members'])} | {pct(g['val_equal'])} | {pct(g['test_equal'])} | "
                         f"{pct(g['test_fitted'])} | {pct(g['best_member_test'])} | "
                         f"{100 * (g['test_equal'] - g['best_member_test']):+.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app.run(main)
