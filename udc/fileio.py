"""Atomic file output: a crash never leaves a half-written model or report."""

import json
import os
import tempfile
from pathlib import Path

from udc.errors import OutputNotWritableError


def ensure_writable_dir(path) -> Path:
    """Creates `path` if needed and checks that files can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".udc-probe-"):
            pass
    except OSError as e:
        raise OutputNotWritableError(
            f"cannot write to output directory {path} ({e.strerror}); "
            "choose a writable directory with --workdir/--output_dir"
        ) from None
    return path


def umask_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file (0o666 less the umask).

    tempfile.mkstemp creates files 0600; an output renamed into place from it keeps
    that mode unless it is set again."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes_atomic(path, data: bytes) -> Path:
    """Writes `data` to a temporary file beside `path`, then renames it into place."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
