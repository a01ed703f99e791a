"""Runs the README's main job (udc-run on Fashion-MNIST) and records its report as
benchmarks/<dataset>/baseline_int8.{json,md}, with the command, wall time and machine.

    python tools/benchmark_baseline.py [--config=configs/fashion_mnist.py] [--workdir=runs/fashion_mnist]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from udc.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from udc.report.machine import describe_machine  # noqa: E402
from udc.report.model_report import to_markdown  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/fashion_mnist.py")
    parser.add_argument("--workdir", default="runs/fashion_mnist")
    args = parser.parse_args()
    command = ["udc-run", f"--config={args.config}", f"--workdir={args.workdir}"]
    start = time.time()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.time() - start
    report = json.loads((ROOT / args.workdir / "report.json").read_text())
    report["benchmark"] = {"command": " ".join(command), "wall_time_s": round(wall, 1), "machine": describe_machine()}
    out = ROOT / "benchmarks" / report["dataset"]
    write_json_atomic(out / "baseline_int8.json", report)
    write_text_atomic(out / "baseline_int8.md", to_markdown(report) + (
        f"\nMade by `{' '.join(command)}` (via `python tools/benchmark_baseline.py`) in {wall / 60:.1f} min "
        f"on {describe_machine()}.\n"))
    print(f"wrote {out}/baseline_int8.json and .md")


if __name__ == "__main__":
    main()
