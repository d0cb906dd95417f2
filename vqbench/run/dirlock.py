"""The lock file of a run directory: one live run per directory.

A run holds ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<run dir>/.vqbench.lock`` until it ends. The
kernel drops the lock when the process ends in any way (kill -9 included), so a killed run never
leaves a stale lock; a second run into a directory whose lock is held is refused with
``RunDirBusy`` (one line, exit 2). rundir.py keeps which directories this process holds.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..common.checks import ConfigError

LOCK_FILE = ".vqbench.lock"


class RunDirBusy(ConfigError):
    """Another live process is running in this directory."""


def lock_dir(d: Path, what: str) -> int:
    """The fd of ``d``'s lock file, flocked and holding our pid; the file is removed again if
    this call created it and could not write it (a full disk). Closing the fd releases the lock."""
    lock = d / LOCK_FILE
    existed = lock.exists()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise RunDirBusy(
            f"{what} {d} is in use by another vqbench run (pid {owner}); wait for it to end "
            f"or choose another directory (hydra.run.dir=... or hydra.sweep.dir=...)"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as err:
        if not existed:
            lock.unlink(missing_ok=True)
        os.close(fd)
        raise OSError(err.errno, err.strerror, str(lock)) from None
    return fd
