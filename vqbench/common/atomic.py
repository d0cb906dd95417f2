"""Atomic file writes: readers see the old file or the complete new one, never a part.
Every file vqbench writes for others to read (metrics, tables, checkpoints, data caches)
goes through here.

    with atomic_path(run_dir / "checkpoint.pt") as tmp:
        torch.save(state, tmp)

The temporary file sits beside the target (same file system, so the final rename is
atomic) and is removed if writing fails. The finished file gets the permissions of a
plainly created one (0666 less the umask, typically 0644), not mkstemp's private 0600.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it is renamed to `path` when the block
    succeeds (if another process got there first, its complete copy is kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.replace(tmp, path)
        except OSError:
            if not path.is_dir():  # not a concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path: Path | str, obj: Any, default: Any = None) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=default) + "\n")
