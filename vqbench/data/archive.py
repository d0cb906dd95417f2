"""Tar archives: a completeness check, and extraction that is safe and leaves no debris.

``extract`` unpacks into a temporary directory inside the destination and moves each
top-level entry into place with os.replace, refusing members that would escape it (absolute
paths, ``..``, links, devices). Extractions into one directory take turns under a lock on
that directory, and each removes the temporary tree a killed one (kill -9) left behind.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20


def _member_target(archive: Path, member: tarfile.TarInfo, strip: int) -> PurePosixPath | None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise ValueError(f"{archive}: member {member.name!r} has an unsafe path; refusing to extract")
    if not (member.isfile() or member.isdir()):
        raise ValueError(
            f"{archive}: member {member.name!r} is a link or special file; refusing to extract"
        )
    parts = [p for p in name.parts if p not in ("", ".")][strip:]
    return PurePosixPath(*parts) if parts else None


def check_tar(path: Path) -> None:
    """Raise ValueError unless ``path`` is a complete, readable tar archive (reads it once)."""
    try:
        with tarfile.open(path) as tf:
            for member in tf:  # walking every header reads the whole (compressed) stream
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a complete tar archive ({e or type(e).__name__})") from None


EXTRACT_PREFIX = ".extract-"


@contextmanager
def locked_dir(directory: Path, stale_prefix: str) -> Iterator[None]:
    """Hold an exclusive flock on ``directory`` itself (no lock file is left behind) and
    remove the temporary trees named ``stale_prefix*`` that a killed extraction (kill -9,
    power loss) left there: while the lock is held, no live extraction owns them."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for p in directory.glob(f"{stale_prefix}*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
        yield
    finally:
        os.close(fd)  # releases the lock


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike,
            strip_components: int = 0) -> list[Path]:
    """Extract a tar archive (.tar, .tar.gz, ...) into ``dest_dir``; return the top-level paths.

    Everything is unpacked into a temporary directory inside ``dest_dir`` first; only
    when the whole archive has been read are its top-level entries moved into place
    (os.replace). Extractions into one ``dest_dir`` hold a lock on it in turn;
    the next one removes the temporary tree a killed extraction left behind. A truncated
    or corrupt archive raises ValueError naming it. Absolute paths, ``..`` components, links and device files are refused
    before anything is written. ``strip_components`` drops leading path parts like tar's
    option of the same name.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with locked_dir(dest_dir, EXTRACT_PREFIX):  # one extraction into dest_dir at a time
            return _extract_locked(archive, dest_dir, strip_components)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ValueError(f"{archive}: truncated or corrupt archive ({e or type(e).__name__})") from None


def _extract_locked(archive: Path, dest_dir: Path, strip_components: int) -> list[Path]:
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError) as e:
        raise ValueError(f"{archive}: not a readable tar archive ({e})") from None
    with tf:
        members = tf.getmembers()
        plan = [(m, _member_target(archive, m, strip_components)) for m in members]
        tmp = Path(tempfile.mkdtemp(prefix=EXTRACT_PREFIX, dir=dest_dir))
        try:
            for m, rel in plan:
                if rel is None:
                    continue
                out = tmp / rel
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(m)
                with src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f, CHUNK)
            tops = sorted(tmp.iterdir())
            moved = []
            for p in tops:
                target = dest_dir / p.name
                if target.is_dir() and p.is_dir():
                    shutil.rmtree(target)
                os.replace(p, target)
                moved.append(target)
            return moved
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
