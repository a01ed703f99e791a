"""Mean and spread over seeds of the UDC points of several udc-benchmark runs.

    python tools/seed_spread.py benchmarks/fashion_mnist/pareto.json \
        benchmarks/fashion_mnist/seed1/pareto.json benchmarks/fashion_mnist/seed2/pareto.json \
        --output=benchmarks/fashion_mnist/seeds.md

Each pareto.json is one seed's run (`udc-benchmark --config.seed=S`, each with its own float
model and supernet); the table lists, per UDC point present in every run, each seed's int8
test accuracy and Vela bytes, their mean and their spread (max - min, and the standard
deviation over seeds); then each seed's exports and size errors at selection (codec and estimate);
then, read from each run's --workdir (relative to the current folder), the validation accuracy of
the decoded child, of the selected child and of the mixture at the end of each search.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_search import last_search_epoch  # noqa: E402  (this folder: the script's own)
from udc.arch import ArchSpec  # noqa: E402
from udc.fileio import write_text_atomic  # noqa: E402


def seed_of(run) -> str:
    for part in run["command"].split():
        if part.startswith("--config.seed="):
            return part.split("=", 1)[1]
    return "0 (the config's)"


def workdir_of(run) -> Path:
    for part in run["command"].split():
        if part.startswith("--workdir="):
            return Path(part.split("=", 1)[1])
    sys.exit(f"tools/seed_spread.py: no --workdir in `{run['command']}`")


def search_end(run, name) -> str:
    """'decoded child / selected child / mixture (gaps to the mixture)' at the end of the search of
    point NAME, from the run's workdir (the selected child's from its arch spec)."""
    point_dir = workdir_of(run) / name
    last = last_search_epoch(point_dir)
    if last is None or "val_accuracy_mixture" not in last:
        return "–"
    decoded, mixture = 100 * last["val_accuracy"], 100 * last["val_accuracy_mixture"]
    selected = 100 * ArchSpec.load(point_dir / "arch_spec.json").selection["val_accuracy"]
    return (f"{decoded:.2f} / {selected:.2f} / {mixture:.2f} % "
            f"({decoded - mixture:+.2f}, {selected - mixture:+.2f})")


def table(runs) -> str:
    names = [p["name"] for p in runs[0]["points"] if p["kind"] == "udc"]
    names = [n for n in names if all(any(p["name"] == n for p in r["points"]) for r in runs)]
    seeds = [seed_of(r) for r in runs]
    lines = ["| UDC point | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | max - min | std |",
             "|---|" + "---|" * (len(seeds) + 3)]
    for name in names:
        points = [next(p for p in r["points"] if p["name"] == name) for r in runs]
        accuracies = [100 * p["accuracy"] for p in points]
        cells = [f"{a:.2f} % ({p['encoded_bytes']:,} B)" for a, p in zip(accuracies, points)]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(accuracies):.2f} % | "
                     f"{max(accuracies) - min(accuracies):.2f} | {statistics.stdev(accuracies):.2f} |")
    lines += ["", "Per seed, the exports and the size at selection against Vela's bytes of the export: the "
              "codec's bytes of the selected child (what selection fits to the limit), then the search's "
              "differentiable estimate:", "",
              "| UDC point | " + " | ".join(f"seed {s}" for s in seeds) + " | largest codec error | "
              "largest estimate error |",
              "|---|" + "---|" * (len(seeds) + 2)]
    for name in names:
        points = [next(p for p in r["points"] if p["name"] == name) for r in runs]
        cells = [f"{p['export_attempts']} export(s), codec {p['selection_codec_error']:+.2%}, "
                 f"estimate {p['selection_estimate_error']:+.2%}" for p in points]
        codec = max(abs(p["selection_codec_error"]) for p in points)
        estimate = max(abs(p["selection_estimate_error"]) for p in points)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {codec:.2%} | {estimate:.2%} |")
    lines += ["", "At the end of each search, validation accuracy of the decoded child (each choice at the "
              "median of its distribution, before any fit to the budget) / the selected child (the best "
              "candidate at the budget: the one that ships, before its fine-tune) / the soft mixture, with "
              "both children's differences to the mixture in points:", "",
              "| UDC point | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(search_end(r, name) for r in runs) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pareto.json of each seed's run")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give at least two runs (seeds) to compare")
    runs = [json.loads(path.read_text()) for path in args.runs]
    text = ["# UDC over seeds", "", "Made with `python tools/seed_spread.py "
            + " ".join(str(p) for p in args.runs) + f" --output={args.output}` from these runs:", ""]
    for path, run in zip(args.runs, runs):
        text.append(f"- `{path}`: `{run['command']}`; load average before {run['load_average'][0]}, "
                    f"after {run['load_average'][1]}")
    text += ["", table(runs), ""]
    write_text_atomic(args.output, "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
