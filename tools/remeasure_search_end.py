"""Validation accuracy of the decoded child and of the soft mixture, remeasured from the checkpoint
each finished search left at its end.

    python tools/remeasure_search_end.py runs/drift/udc_8kb runs/seed1c/udc_8kb ... \
        --config=configs/fashion_mnist.py --output=benchmarks/fashion_mnist/search_end.md

Why: each search epoch records both figures, but until the mixture's BatchNorm recalibration
weighed the options as inference does (`udc.space.layers.inference_weights`), the
recorded mixture figure came from statistics of Gumbel samples. The search's own decisions never
read it, so the search's end state is the same; this restores that state (the last checkpoint
of WORKDIR/checkpoints, the config in WORKDIR/search_state.json laid over --config) and measures
again with the current code. The decoded child's figure, measured again too, must repeat the
recorded one: it checks that the state restored is the state the search ended in.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_search import last_search_epoch  # noqa: E402  (this folder: the script's own)
from udc.arch import ArchSpec  # noqa: E402
from udc.fileio import write_text_atomic  # noqa: E402
from udc.report.machine import load_average  # noqa: E402


def saved_config(base_config_path, point_dir):
    """The config the search at POINT_DIR ran with: its recorded keys laid over the base config."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("base_config", base_config_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    # A state from before search.relaxation existed ran the relaxed mixture (udc.search's added keys).
    recorded = {"search.relaxation": "gumbel_softmax",
                **json.loads((Path(point_dir) / "search_state.json").read_text())["config"]}
    with config.unlocked():
        for key, value in recorded.items():
            node, *path, leaf = [config] + key.split(".")
            for part in path:
                node = node[part]
            node[leaf] = tuple(value) if isinstance(value, list) else value
    return config


def remeasure(base_config_path, point_dir) -> dict:
    from udc.data import load_splits
    from udc.search.loop import SupernetSearch

    config = saved_config(base_config_path, point_dir)
    search = SupernetSearch(config, load_splits(config), point_dir, log=lambda _: None)
    if not search.searching.restore() or search.searching.epochs_done < search.search_epochs:
        sys.exit(f"tools/remeasure_search_end.py: {point_dir} holds no finished search")
    last = last_search_epoch(point_dir)
    return {"point": str(point_dir), "seed": int(config.seed), "budget_kb": float(config.budget_kb),
            "relaxation": config.search.relaxation,
            "decoded_recorded": last["val_accuracy"], "mixture_recorded": last["val_accuracy_mixture"],
            "decoded": search.child_accuracy({layer.name: layer.hard_choice() for layer in search.layers}),
            "mixture": search.mixture_accuracy(),
            "selected": ArchSpec.load(Path(point_dir) / "arch_spec.json").selection["val_accuracy"]}


def table(rows, command, loads) -> str:
    lines = [
        "# The end of each search: decoded child, selected child and mixture, remeasured",
        "",
        f"Made with `{command}`; load average before {loads[0]}, after {loads[1]}.",
        "",
        "Validation accuracy at the end of each search, from the checkpoint it left: the decoded child "
        "(each choice at the median of its distribution), the selected child (the best candidate at the "
        "budget, the one that ships, before its fine-tune; as selection recorded it), and the soft mixture "
        "with BatchNorm recalibrated as inference weighs the options. The last column is the mixture's "
        "figure as the search recorded it (from statistics of Gumbel samples in searches made before "
        "commit e818c2d). The search step forwarded the relaxed mixture (`gumbel_softmax`) or one "
        "sampled child (`straight_through`; `search.relaxation`). The decoded child is measured "
        "again and must repeat its recorded figure (it shows the restored state is the search's end).",
        "",
        "| search | search step | decoded (recorded) | selected | mixture | decoded - mixture "
        "| selected - mixture | mixture as recorded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['point']} (seed {r['seed']}, {r['budget_kb']:g} KiB) | {r['relaxation']} "
            f"| {100 * r['decoded']:.2f} % "
            f"({100 * r['decoded_recorded']:.2f}) | {100 * r['selected']:.2f} % | {100 * r['mixture']:.2f} % "
            f"| {100 * (r['decoded'] - r['mixture']):+.2f} | {100 * (r['selected'] - r['mixture']):+.2f} "
            f"| {100 * r['mixture_recorded']:.2f} % |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+", help="workdirs of finished searches (udc-benchmark's WORKDIR/udc_*)")
    parser.add_argument("--config", default="configs/fashion_mnist.py",
                        help="the config file the searches were made from (their recorded keys override it)")
    parser.add_argument("--output", required=True, help="the markdown file to write")
    args = parser.parse_args()
    before = load_average()
    rows = []
    for point in args.points:
        rows.append(remeasure(args.config, Path(point)))
        print(json.dumps(rows[-1]), flush=True)
    after = load_average()
    command = "python " + " ".join([f"tools/{Path(__file__).name}"] + sys.argv[1:])
    write_text_atomic(args.output, table(rows, command, (before, after)))


if __name__ == "__main__":
    main()
