"""One writer per workdir: an OS file lock on WORKDIR/.lock, held for the whole run.

Two runs writing one workdir would interleave checkpoints and state files (a state that
names one epoch, weights of another). `fcntl.flock` is released by the OS when its
holder dies, so the lock file a killed run leaves behind never blocks; the file only
records who holds it (PID and start time) for the refusal message.

A thread that already holds a workdir may take it again (udc-benchmark and udc-ensemble
call `udc.workflows.pipeline` per budget workdir, and a nested call must not refuse its caller);
another run, in this process or another, is refused at once.
"""

import contextlib
import fcntl
import os
import threading
import time

from udc.errors import UdcError
from udc.fileio import ensure_writable_dir, umask_mode

LOCK_FILE = ".lock"
_held = {}  # (resolved workdir, thread id) -> how many nested holds
_held_guard = threading.Lock()


class WorkdirInUseError(UdcError):
    pass


def _holder(fd) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode("utf-8", "replace").strip()
    pid, _, started = text.partition(" ")
    return f"udc process {pid or '(unknown)'} (started {started or 'just now'})"


@contextlib.contextmanager
def workdir_lock(workdir):
    """Holds WORKDIR's lock for the `with` body; WorkdirInUseError if another run holds it."""
    workdir = ensure_writable_dir(workdir)
    key = (workdir.resolve(), threading.get_ident())
    with _held_guard:
        nested = key in _held
        if nested:
            _held[key] += 1
    if nested:
        try:
            yield workdir
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = os.open(workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, umask_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkdirInUseError(f"{workdir} is in use by {_holder(fd)}; wait for it or use another "
                                    "--workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        with _held_guard:
            _held[key] = 1
        try:
            yield workdir
        finally:
            with _held_guard:
                del _held[key]
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race a waiting run)
