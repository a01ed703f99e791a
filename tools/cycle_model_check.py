"""The cycle model against Vela on exported models: benchmarks/<dataset>/cycle_model.{json,md}.

    python tools/cycle_model_check.py runs/drift/udc_8kb runs/drift/udc_16kb ... \
        --config=configs/fashion_mnist.py --targets=ethos-u55-128,ethos-u65-256,ethos-u85-256 \
        --output=benchmarks/fashion_mnist/cycle_model

For each target: measures the cycle tables of the config's supernet (`udc.costs.cycle_model`;
fresh weights: the tables depend on shapes and weight bytes, not on training), then for each
exported model (WORKDIR/model.tflite with its WORKDIR/arch_spec.json) sets the table estimate,
at the encoded bytes of the file's own weights, beside Vela's cycles of that file for that target.
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.arch import ArchSpec  # noqa: E402
from udc.deploy.strip import largest_child_template  # noqa: E402
from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.machine import load_average  # noqa: E402


def load_config(path):
    spec = importlib.util.spec_from_file_location("config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def check_target(config, splits, target, points, log) -> dict:
    from udc.compat import keras
    from udc.costs import cycle_model, size_model
    from udc.search.settings import search_options
    from udc.space.supernet import build_supernet

    keras.utils.set_random_seed(config.seed)
    supernet = build_supernet(config.backbone, splits.input_shape, splits.num_classes,
                              search_options(config), config.search.max_widths)
    started = time.perf_counter()
    template = largest_child_template(supernet, splits.train.x[:64])
    tables = cycle_model.measure(supernet, target, template, log=log)
    seconds = time.perf_counter() - started
    rows = []
    for point in points:
        spec = ArchSpec.load(point / "arch_spec.json")
        data = (point / "model.tflite").read_bytes()
        weight_bytes = size_model.exported_bytes(data, target)["layers"]
        estimate = sum(tables.layers[layer.name].cycles(layer.input_width, layer.width, layer.pattern, b)
                       for layer, b in zip(spec.layers, weight_bytes))
        compiled = target.compile(data)
        vela = compiled.cycles
        # The size model's bytes of the same file (its weights through the target's encoder, plus pooling).
        bytes_estimate = size_model.exported_bytes(data, target)["total"]
        rows.append({"model": str(point), "vela_cycles": vela, "estimate_cycles": round(estimate),
                     "error": estimate / vela - 1.0, "vela_bytes": compiled.encoded_weight_bytes,
                     "estimate_bytes": bytes_estimate,
                     "bytes_error": bytes_estimate / compiled.encoded_weight_bytes - 1.0})
        log(f"{target.name} {point}: Vela {vela}, estimate {estimate:.0f} ({estimate / vela - 1:+.2%})")
    return {"target": target.name, "tables_seconds": seconds, "models": rows}


def markdown(result) -> str:
    lines = ["# The cycle model against Vela", "",
             f"Made with `{result['command']}`; load average before {result['load_before']}, after "
             f"{result['load_after']}. Each target's cycle tables were measured once on the config's "
             "supernet (fresh weights) and used for every model; the estimate takes the encoded bytes of "
             "each file's own weights.", "",
             "| model | " + " | ".join(f"{t['target']} Vela | estimate | error" for t in result["targets"]) + " |",
             "|---|" + "---|---|---|" * len(result["targets"])]
    for i, row in enumerate(result["targets"][0]["models"]):
        cells = []
        for t in result["targets"]:
            r = t["models"][i]
            cells.append(f"{r['vela_cycles']:,} | {r['estimate_cycles']:,} | {r['error']:+.2%}")
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    lines += ["", "The size model on the same files (their weights through the target's encoder, plus pooling) "
              "against Vela's encoded bytes, largest error per target: " + ", ".join(
                  f"{t['target']} {max(abs(r['bytes_error']) for r in t['models']):.2%}" for t in result["targets"])
              + "."]
    lines += ["", "Largest cycle error per target: " + ", ".join(
        f"{t['target']} {max(abs(r['error']) for r in t['models']):.2%} (tables measured in "
        f"{t['tables_seconds']:.0f} s)" for t in result["targets"]) + "."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+", help="workdirs of exported searches (model.tflite, arch_spec.json)")
    parser.add_argument("--config", default="configs/fashion_mnist.py")
    parser.add_argument("--targets", default="ethos-u55-128")
    parser.add_argument("--output", required=True, help="path without extension: writes .json and .md")
    args = parser.parse_args()
    before = load_average()
    from udc.data import load_splits
    from udc.targets import get_target

    config = load_config(args.config)
    splits = load_splits(config)
    points = [Path(p) for p in args.points]
    targets = [check_target(config, splits, get_target(name), points, lambda m: print(m, flush=True))
               for name in args.targets.split(",")]
    result = {"command": "python " + " ".join([f"tools/{Path(__file__).name}"] + sys.argv[1:]),
              "load_before": before, "load_after": load_average(),
              "targets": targets}
    write_json_atomic(Path(args.output + ".json"), result)
    write_text_atomic(Path(args.output + ".md"), markdown(result))


if __name__ == "__main__":
    main()
