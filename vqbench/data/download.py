"""Download a file with resume + checksum, and extract archives safely.

``download`` writes to ``<dest>.part``, resumes it with an HTTP Range request when the
server supports it (ftp:// and servers answering 200 restart from scratch), verifies a
sha256/md5 when one is given, and only then renames the file into place. Without a known
checksum it records the sha256 of the first completed download in ``<dest>.sha256`` and
verifies later calls against that record.
``extract`` unpacks a tar archive into a temporary directory inside the destination and
moves each entry into place with os.replace, refusing members that would escape it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from ..atomic import write_text_atomic

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed; the message is one line saying what to do."""


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _expected(sha256: str | None, md5: str | None) -> tuple[str, str] | None:
    if sha256 and md5:
        raise ValueError("give sha256 or md5, not both")
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


def _verify(path: Path, url: str, expected: tuple[str, str] | None) -> str:
    """Check ``path`` against ``expected``; return its sha256 (or the expected digest)."""
    if expected is None:
        return file_digest(path, "sha256")
    algo, want = expected
    got = file_digest(path, algo)
    if got != want:
        raise DownloadError(
            f"checksum mismatch for {url}: expected {algo} {want}, got {got}; "
            f"removed the corrupt file {path}, run the download again"
        )
    return got


def download(url: str, dest: str | os.PathLike, sha256: str | None = None,
             md5: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and return ``dest``.

    An existing ``dest`` is kept when it matches the given checksum (or its recorded
    sidecar sha256). Raises DownloadError with a one-line message when the server cannot
    be reached, the transfer is cut short (the .part file is kept for a resume), or the
    checksum does not match (nothing is left at ``dest``).
    """
    dest = Path(dest)
    expected = _expected(sha256, md5)
    sidecar = _sidecar(dest)
    if expected is None and sidecar.is_file():
        expected = ("sha256", sidecar.read_text().split()[0].lower())
    if dest.is_file():
        try:
            _verify(dest, url, expected)
            return dest
        except DownloadError:
            dest.unlink()  # stale or corrupt: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, progress, timeout)
    try:
        digest = _verify(part, url, expected)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    if expected is None or expected[0] == "sha256":
        write_text_atomic(sidecar, f"{digest}  {dest.name}\n")
    return dest


def _offline_error(url: str, reason: object, dest: Path) -> DownloadError:
    return DownloadError(
        f"cannot download {url} ({reason}); this machine looks offline or the server is "
        f"unreachable: fetch the file elsewhere and place it at {dest}, or point "
        f"dataset.root at an existing copy"
    )


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.is_file() else 0
    resumable = url.lower().startswith(("http://", "https://"))
    if have and not resumable:
        have = 0  # ftp:// through urllib has no Range: restart from scratch
    req = urllib.request.Request(url, headers={"User-Agent": "vqbench"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    final = part.with_name(part.name[:-len(".part")])
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            return  # requested range starts at the end: the .part file is complete
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, socket.timeout, OSError) as e:
        reason = getattr(e, "reason", e)
        raise _offline_error(url, reason, final) from None
    with resp:
        status = getattr(resp, "status", None) or resp.getcode()
        if have and status != 206:
            have = 0  # server ignored the Range header: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        bar = _progress_bar(total, have, final.name, progress)
        got = have
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (OSError, socket.timeout) as e:
                        raise DownloadError(
                            f"download of {url} interrupted after {got} bytes ({e}); "
                            f"run the same command again to resume from {part}"
                        ) from None
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and got != total:
        raise DownloadError(
            f"download of {url} incomplete: got {got} of {total} bytes; "
            f"run the same command again to resume from {part}"
        )


def _progress_bar(total: int | None, initial: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True,
                unit_divisor=1024, desc=name, file=sys.stderr)


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
    try:
        member = tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as e:
        raise ValueError(f"{archive}: member {member.name!r} is unsafe ({e}); refusing to extract") from None
    parts = [p for p in PurePosixPath(member.name).parts if p not in ("", ".")][strip:]
    return member.replace(name=str(PurePosixPath(*parts)), deep=False) if parts else None


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike,
            strip_components: int = 0) -> list[Path]:
    """Extract a tar archive (.tar, .tar.gz, ...) into ``dest_dir``; return the top-level paths.

    Everything is unpacked into a temporary directory inside ``dest_dir`` first; only
    when the whole archive has been read are its top-level entries moved into place
    (os.replace). Absolute paths, ``..`` components, links and device files are refused
    before anything is written. ``strip_components`` drops leading path parts like tar's
    option of the same name.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError) as e:
        raise ValueError(f"{archive}: not a readable tar archive ({e})") from None
    with tf, tempfile.TemporaryDirectory(prefix=".extract-", dir=dest_dir) as tmp_name:
        tmp = Path(tmp_name)
        # Every member is checked before anything is written.
        plan = [t for t in (_member_target(archive, m, strip_components, tmp) for m in tf.getmembers()) if t]
        tf.extractall(tmp, members=plan, filter="data")
        moved = []
        for p in sorted(tmp.iterdir()):
            target = dest_dir / p.name
            if target.is_dir() and p.is_dir():
                shutil.rmtree(target)
            os.replace(p, target)
            moved.append(target)
        return moved
