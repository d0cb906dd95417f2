"""The run's log file (``cli.log``, Hydra's job log): a write that fails (disk full, a read-only
file system) is recorded once, and the file is not written again, instead of the logging
module printing a traceback for every record; the run then ends with one error line naming
the file (``failure``), and what it wrote before (metrics.json) stays.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..common.errors import write_failed

_failed: dict[str, BaseException] = {}  # log file -> its first write error (this process)


def watch() -> None:
    """Record instead of print the write errors of the root logger's file handlers."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and not getattr(handler, "_vqbench_watched", False):
            handler._vqbench_watched = True  # type: ignore[attr-defined]
            handler.handleError = _recorder(handler)  # type: ignore[method-assign]


def _recorder(handler: logging.FileHandler):
    def handle_error(record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if err is not None:
            _failed.setdefault(handler.baseFilename, err)
        handler.setLevel(logging.CRITICAL + 1)  # write nothing more into it: no partial lines later
    return handle_error


def failure() -> str | None:
    """One line for the first log file that could not be written, or None (and forget it)."""
    if not _failed:
        return None
    path, err = next(iter(_failed.items()))
    _failed.clear()
    return str(write_failed(Path(path), err))
