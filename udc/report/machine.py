"""A one-line description of this machine, recorded beside every benchmark result."""

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
