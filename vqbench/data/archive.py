"""Tar archives: a completeness check, and extraction that is safe and leaves no debris.

``extract`` unpacks into a temporary directory inside the destination and moves each
top-level entry into place with one rename (common/atomic.py's move_into_place), refusing
members that would escape it (absolute paths, ``..``, links, devices). Extractions into one directory take turns under a lock on
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

from ..common.atomic import move_into_place

CHUNK = 1 << 20


# tarfile's `data` filter exists from Python 3.10.12 / 3.11.4; on older patch releases the checks
# above (plain files and directories only, no absolute or `..` paths) are what protects extraction.
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


def _member_target(archive: Path, member: tarfile.TarInfo, strip: int, dest: Path) -> tarfile.TarInfo | None:
    """`member` as tarfile's ``data`` filter passes it (sane permissions, nothing outside
    `dest`), stricter still: absolute paths, ``..`` and links are refused, not rewritten;
    `strip` leading parts dropped."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise ValueError(f"{archive}: member {member.name!r} has an unsafe path; refusing to extract")
    if not (member.isfile() or member.isdir()):
        raise ValueError(
            f"{archive}: member {member.name!r} is a link or special file; refusing to extract"
        )
    if HAS_DATA_FILTER:
        try:
            member = tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as e:
            raise ValueError(f"{archive}: member {member.name!r} is unsafe ({e}); refusing to extract") from None
    parts = [p for p in PurePosixPath(member.name).parts if p not in ("", ".")][strip:]
    return member.replace(name=str(PurePosixPath(*parts)), deep=False) if parts else None


def check_tar(path: Path) -> None:
    """Raise ValueError unless ``path`` is a complete, readable tar archive (reads it once)."""
    try:
        with tarfile.open(path) as tf:
            for member in tf:  # walking every header reads the whole (compressed) stream
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        if "could not be opened successfully" in reason:  # tarfile's list of every method it tried
            reason = why_not_tar(path)
        raise ValueError(f"{path}: not a complete tar archive ({reason})") from None


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
    (common/atomic.move_into_place). Extractions into one ``dest_dir`` hold a lock on it in turn;
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


MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


def why_not_tar(archive: Path) -> str:
    """A short reason why tarfile cannot open ``archive`` (instead of its per-method list)."""
    try:
        with open(archive, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if not head:
        return "empty file (0 bytes), not a tar archive"
    kind = next((k for magic, k in MAGIC.items() if head.startswith(magic)), None)
    if kind is None:
        return "not a tar archive (neither a plain tar nor gzip/bzip2/xz-compressed)"
    return f"a {kind} file that does not hold a (complete) tar archive"


def _extract_locked(archive: Path, dest_dir: Path, strip_components: int) -> list[Path]:
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError):
        raise ValueError(f"{archive}: {why_not_tar(archive)}") from None
    with tf:
        tmp = Path(tempfile.mkdtemp(prefix=EXTRACT_PREFIX, dir=dest_dir))
        try:
            # Every member is checked before anything is written.
            plan = [t for t in (_member_target(archive, m, strip_components, tmp) for m in tf.getmembers()) if t]
            tf.extractall(tmp, members=plan, **({"filter": "data"} if HAS_DATA_FILTER else {}))
            moved = []
            for p in sorted(tmp.iterdir()):
                target = dest_dir / p.name
                move_into_place(p, target)
                moved.append(target)
            return moved
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
