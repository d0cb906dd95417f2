"""Download a file with resume + checksum, and extract archives safely.

``download`` writes to ``<dest>.part`` and records the server's validators (ETag,
Last-Modified, length) beside it in ``<dest>.part.json``. A later call resumes the .part
only with ``If-Range`` on that validator, so a remote file that changed in between is sent
whole and the download starts again from zero (also when the server ignores If-Range but
answers with another validator, answers 416, or when there is no validator to check: ftp://,
or a .part from an older vqbench). The finished file is checked against the given
sha256/md5, then against ``validate`` (its format: HDF5 keys, a readable tar listing, ...),
and only then renamed into place. Without a known checksum the sha256 of the first
*validated* download is recorded in ``<dest>.sha256`` and later calls are checked against
it; the error for a mismatch says how to accept a changed remote file.
Archives: see ``archive.py`` (``extract`` and ``check_tar`` are re-exported here).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..common.atomic import move_into_place, write_text_atomic
from .archive import check_tar, extract, locked_dir  # noqa: F401  (re-exported)

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


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _meta(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def _expected(sha256: str | None, md5: str | None) -> tuple[str, str] | None:
    if sha256 and md5:
        raise ValueError("give sha256 or md5, not both")
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


def _verify(path: Path, url: str, expected: tuple[str, str] | None, pinned_by: Path | None = None) -> str:
    """Check ``path`` against ``expected``; return its sha256 (or the expected digest).

    ``pinned_by`` is the sidecar the expected digest came from (no published checksum)."""
    if expected is None:
        return file_digest(path, "sha256")
    algo, want = expected
    got = file_digest(path, algo)
    if got != want:
        if pinned_by is not None:
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {want} (recorded in {pinned_by} at the first "
                f"download), got {got}; the remote file changed: if that is intended, delete {pinned_by} "
                f"and run the download again"
            )
        raise DownloadError(
            f"checksum mismatch for {url}: expected {algo} {want}, got {got}; "
            f"removed the download, nothing was kept: run it again, or use another mirror (--url)"
        )
    return got


Validator = Callable[[Path], None]  # raises ValueError when the file is not what it should be


def download(url: str, dest: str | os.PathLike, sha256: str | None = None,
             md5: str | None = None, progress: bool = True, timeout: float = 60.0,
             validate: Validator | None = None) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part`` when safe) and return ``dest``.

    An existing ``dest`` is kept when it matches the given checksum (or its recorded
    sidecar sha256) and passes ``validate``; otherwise it is fetched again. Raises
    DownloadError with a one-line message when the server cannot be reached, the transfer
    is cut short (the .part file is kept for a resume), the checksum does not match, or
    the file fails ``validate`` (in both cases nothing is left at ``dest`` or pinned).
    """
    dest = Path(dest)
    expected = _expected(sha256, md5)
    sidecar = _sidecar(dest)
    pinned_by = None
    if expected is None and sidecar.is_file():
        try:
            expected = ("sha256", sidecar.read_text().split()[0].lower())
            pinned_by = sidecar
        except (OSError, IndexError):
            sidecar.unlink(missing_ok=True)  # unreadable or empty record: not a pin
    if dest.is_file():
        try:
            _verify(dest, url, expected, pinned_by)
        except DownloadError:
            dest.unlink()  # stale or corrupt: fetch again
        else:
            try:
                _validate(dest, url, validate)
                return dest
            except DownloadError:
                dest.unlink()
                if pinned_by is not None:  # the record pinned a file that was never usable
                    sidecar.unlink(missing_ok=True)
                    expected = pinned_by = None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part(dest)
    _fetch(url, part, _meta(dest), progress, timeout)
    try:
        digest = _verify(part, url, expected, pinned_by)
        _validate(part, url, validate)
    except DownloadError:
        part.unlink(missing_ok=True)
        _meta(dest).unlink(missing_ok=True)
        raise
    move_into_place(part, dest)
    _meta(dest).unlink(missing_ok=True)
    if expected is None or expected[0] == "sha256":
        write_text_atomic(sidecar, f"{digest}  {dest.name}\n")
    return dest


def _validate(path: Path, url: str, validate: Validator | None) -> None:
    if validate is None:
        return
    try:
        validate(path)
    except (ValueError, OSError) as e:
        raise DownloadError(
            f"{url} did not give a usable file ({e}); removed it and recorded nothing: check the URL "
            f"(--url) or try again later"
        ) from None


def _offline_error(url: str, reason: object, dest: Path) -> DownloadError:
    return DownloadError(
        f"cannot download {url} ({reason}); this machine looks offline or the server is "
        f"unreachable: fetch the file elsewhere and place it at {dest}, or point "
        f"dataset.root at an existing copy"
    )


def _load_meta(meta: Path, url: str) -> dict | None:
    """The validators saved for a .part of ``url``, or None when there is nothing to trust."""
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("url") != url:
        return None
    etag = record.get("etag") or ""
    if (not etag or etag.startswith("W/")) and not record.get("last_modified"):
        return None  # If-Range needs a strong ETag or a date
    return record


def _if_range(record: dict) -> str:
    etag = record.get("etag") or ""
    return etag if etag and not etag.startswith("W/") else record["last_modified"]


def _same_remote(record: dict, headers) -> bool:
    """Whether a 206 response comes from the file the .part was started from."""
    for key, header in (("etag", "ETag"), ("last_modified", "Last-Modified")):
        if record.get(key) and headers.get(header) and headers.get(header) != record[key]:
            return False
    total = _content_range_total(headers.get("Content-Range"))
    return record.get("length") is None or total is None or total == record["length"]


def _content_range_total(value: str | None) -> int | None:
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _content_range_start(value: str | None) -> int | None:
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _fetch(url: str, part: Path, meta: Path, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.is_file() else 0
    record = _load_meta(meta, url) if have else None
    resumable = url.lower().startswith(("http://", "https://"))
    if have and (not resumable or record is None or (record.get("length") or have + 1) < have):
        have = 0  # nothing proves the .part is a prefix of the remote file: start from zero
    if have and record.get("length") == have:
        return  # complete by our own record; the checksum/format checks follow
    final = part.with_name(part.name[:-len(".part")])
    resp = None
    if have:
        resp = _open(url, final, timeout, {"Range": f"bytes={have}-", "If-Range": _if_range(record)})
        status = None if resp is None else (getattr(resp, "status", None) or resp.getcode())
        if status == 206 and _same_remote(record, resp.headers) \
                and _content_range_start(resp.headers.get("Content-Range")) == have:
            pass  # the same remote file: append
        elif status == 200:
            have = 0  # the whole file (it changed, or the server ignores ranges): from byte 0
        else:  # 416, or a 206 of another version: ask again for the whole file
            if resp is not None:
                resp.close()
            resp, have = None, 0
    if resp is None:
        resp = _open(url, final, timeout, {})
        if resp is None:
            raise DownloadError(f"cannot download {url}: the server refused the request (HTTP 416)")
    with resp:
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        if have == 0:  # a fresh start: record what we are downloading, before any byte
            write_text_atomic(meta, json.dumps({
                "url": url, "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified"), "length": total}))
        mode = "ab" if have else "wb"
        read = getattr(resp, "read1", None) or resp.read  # ftp:// and file:// responses lack read1
        bar = _progress_bar(total, have, final.name, progress)
        try:
            got = _copy(read, part, mode, have, url, bar)
        finally:
            if bar is not None:
                bar.close()
    if total is not None and got != total:
        raise DownloadError(
            f"download of {url} incomplete: got {got} of {total} bytes; "
            f"run the same command again to resume from {part}"
        )


def _copy(read, part: Path, mode: str, have: int, url: str, bar) -> int:
    """Write what ``read`` gives, block by block, to ``part`` (opened with ``mode``: "wb", or "ab"
    after ``have`` bytes); returns the bytes ``part`` then holds. A failing read is a
    DownloadError that says how to resume."""
    got = have
    with open(part, mode) as f:
        while True:
            try:
                block = read(CHUNK)  # what has arrived: a stall loses no bytes
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
    return got


def _open(url: str, final: Path, timeout: float, headers: dict[str, str]):
    """The response to a GET of ``url``; None for HTTP 416 (range not satisfiable)."""
    req = urllib.request.Request(url, headers={"User-Agent": "vqbench", **headers})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:
            return None
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, socket.timeout, OSError) as e:
        reason = getattr(e, "reason", e)
        raise _offline_error(url, reason, final) from None


def _progress_bar(total: int | None, initial: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True,
                unit_divisor=1024, desc=name, file=sys.stderr)
