"""Failures during a run that the user can act on: one line naming the file or value.

Configuration problems are ``config.ConfigError``; ``RunFailed`` is for what goes wrong
once a valid run is under way (a file that cannot be written, metrics that came out NaN).
The CLI prints either as one line and exits with status 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class RunFailed(RuntimeError):
    """A run could not finish; the message says which file or value and what to do."""


def write_failed(path: Path, err: BaseException) -> RunFailed:
    """A one-line error for a file that could not be written (disk full, read-only, ...)."""
    text = str(err).strip()
    reason = getattr(err, "strerror", None) or (text.splitlines()[-1] if text else "write failed")
    try:
        free = shutil.disk_usage(Path(path).parent).free
        space = f"; {free / 2**20:.1f} MiB free on its file system"
    except OSError:
        space = ""
    return RunFailed(f"cannot write {path} ({type(err).__name__}: {reason}){space}")
