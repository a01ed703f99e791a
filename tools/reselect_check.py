"""Selection again, with the current code, on finished searches: the same arch spec as they shipped?

    python tools/reselect_check.py runs/drift/udc_8kb runs/drift/udc_16kb \
        --config=configs/fashion_mnist.py --output=benchmarks/fashion_mnist/reselect_check.md

Copies each search's state and checkpoints to a fresh folder under runs/reselect/, runs
`search_and_export(..., export=False)` there (the search is finished, so it resumes straight to
selection and strip) and compares the arch spec with the one the search shipped: per layer the
widths, sparsity, bits and codec bytes, and the selected child's validation accuracy. What a
refactoring of targets, costs and selection must leave as it was.
"""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from remeasure_search_end import saved_config  # noqa: E402  (this folder: the script's own)
from udc.arch import ArchSpec  # noqa: E402
from udc.fileio import write_text_atomic  # noqa: E402
from udc.report.machine import load_average  # noqa: E402

KEYS = ("name", "width", "input_width", "pattern", "sparsity", "bits", "codec_bytes")


def reselect(base_config, point: Path) -> dict:
    from udc.workflows.pipeline import search_and_export

    copy = ROOT / "runs" / "reselect" / point.parent.name / point.name
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    shutil.copytree(point / "checkpoints", copy / "checkpoints")
    shutil.copy(point / "search_state.json", copy / "search_state.json")
    new = search_and_export(saved_config(base_config, point), copy, log=lambda _: None, export=False)
    old = ArchSpec.load(point / "arch_spec.json")
    return {"point": str(point), "same_layers": [{k: getattr(l, k) for k in KEYS} for l in old.layers]
            == [{k: getattr(l, k) for k in KEYS} for l in new.layers],
            "codec_bytes": (old.codec_bytes, new.codec_bytes),
            "val_accuracy": (old.selection["val_accuracy"], new.selection["val_accuracy"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+")
    parser.add_argument("--config", default="configs/fashion_mnist.py")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    before = load_average()
    rows = [reselect(args.config, Path(p)) for p in args.points]
    after = load_average()
    command = "python " + " ".join([f"tools/{Path(__file__).name}"] + sys.argv[1:])
    lines = ["# Selection again with the current code", "", f"Made with `{command}`; load average before {before}, "
             f"after {after}.", "", "| search | same layers (widths, pattern, sparsity, bits, codec bytes) "
             "| codec bytes (shipped / now) | selected child's validation accuracy (shipped / now) |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['point']} | {'yes' if r['same_layers'] else 'NO'} | {r['codec_bytes'][0]:,} / "
                     f"{r['codec_bytes'][1]:,} | {100 * r['val_accuracy'][0]:.2f} / {100 * r['val_accuracy'][1]:.2f} % |")
    write_text_atomic(args.output, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
