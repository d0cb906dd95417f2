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
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from .errors import write_failed


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
def atomic_dir(path: Path | str, prefix: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside `path` (named `prefix`..., default ".<name>."); it is
    renamed to `path` when the block succeeds (if another process got there first, its
    complete copy is kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix or f".{path.name}.", dir=path.parent))
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


def move_into_place(src: Path | str, target: Path | str) -> None:
    """Move a finished file or tree `src`, written beside `target` (same file system), to `target`
    with one rename. A directory already at `target` is removed first: a reader may find it
    missing for that moment, never half-written."""
    target = Path(target)
    if target.is_dir() and not target.is_symlink() and Path(src).is_dir():
        shutil.rmtree(target)
    os.replace(src, target)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        _write_synced(tmp, text)


def write_texts_atomic(files: Mapping[Path, str]) -> None:
    """Several files, all or none: each goes to a temporary file beside it, and the renames
    (which need no space) follow only once every one is written (e.g. a table's .md and .csv)."""
    with ExitStack() as stack:
        for path, text in files.items():
            _write_synced(stack.enter_context(atomic_path(path)), text)


def write_json_atomic(path: Path | str, obj: Any) -> None:
    """Write strict JSON to `path` atomically: tensors and numpy scalars become plain
    numbers, and a non-finite float becomes null (``NaN``/``Infinity`` are not JSON)."""
    try:
        write_text_atomic(path, json.dumps(strict_json(obj), indent=2, default=_jsonable) + "\n")
    except OSError as err:  # disk full, read-only directory: name the file
        raise write_failed(Path(path), err) from None


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (also inside tensors/numpy values) replaced by None."""
    if isinstance(obj, Mapping):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # tensors, numpy arrays and scalars
        return strict_json(obj.tolist() if getattr(obj, "ndim", 0) else obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist") and getattr(value, "ndim", 0):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
