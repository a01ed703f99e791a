"""A one-line description of this machine and its load, recorded beside every benchmark result."""

import os
import platform
from pathlib import Path


def describe_machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor() or "unknown CPU")
    return (f"{os.cpu_count()} cores ({cpu}), no accelerator, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. "0.71 1.69 1.72": a benchmark records them before and after, since
    a figure taken beside other work is not a result."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
