"""Running the udc binaries as a user does, and what a bad input must look like.

A bad input exits with status 1 and prints exactly one line on stderr,
`udc-<binary>: error: <what is wrong>; <what to do>`, with no traceback and no
TensorFlow log lines (udc.cli.common keeps those out), and leaves no half-written
file behind (outputs are written to a temporary file and renamed into place).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "configs" / "digits.py")


def udc(binary, *args, env=None, timeout=600, umask=None):
    """Runs `udc-<binary>` (the module udc.cli.<binary>) in a subprocess; returns the CompletedProcess."""
    command = [sys.executable, "-c", f"from udc.cli.{binary} import run; run()", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, **(env or {})}, umask=-1 if umask is None else umask)


def assert_user_error(result, *fragments):
    """Exit status 1, one line on stderr (an error line holding every fragment), no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and ": error: " in lines[0], result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def half_written(directory) -> list:
    """Temporary files an interrupted atomic write would leave in DIRECTORY (recursively)."""
    directory = Path(directory)
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob(".*")
                  if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith(".udc-probe-")
                                      or p.suffix == ".keras"))
