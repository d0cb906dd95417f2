"""Read, write and stream TEXMEX vector files (.fvecs, .ivecs, .bvecs).

Each record is a little-endian int32 dimension ``d`` followed by ``d`` values
(float32 for .fvecs, int32 for .ivecs, uint8 for .bvecs). Files are memory-mapped:
``read_vecs`` returns an (N, d) strided view that loads nothing until indexed, and
``iter_float32`` converts chunk by chunk, so a 1M x 128 base never becomes float64
or one big float32 copy unless the caller asks for it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..common.atomic import atomic_path

VALUE_DTYPES = {
    ".fvecs": np.dtype("<f4"),
    ".ivecs": np.dtype("<i4"),
    ".bvecs": np.dtype("u1"),
}
MAX_DIM = 1 << 20  # a larger "dimension" means the file is not a vecs file


def value_dtype(path: str | os.PathLike) -> np.dtype:
    """The value dtype implied by the file extension; ValueError for anything else."""
    ext = Path(path).suffix.lower()
    if ext not in VALUE_DTYPES:
        raise ValueError(
            f"{path}: unsupported extension {ext!r}; expected one of "
            f"{', '.join(sorted(VALUE_DTYPES))}"
        )
    return VALUE_DTYPES[ext]


def read_vecs(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Return the (N, d) array stored in a .fvecs/.ivecs/.bvecs file.

    With ``mmap=True`` (default) the result is a read-only view on a memory map;
    nothing is read until it is indexed. Raises ValueError naming the file and the
    offending record and byte offset for an empty or truncated file, a record whose
    dimension differs from the first one, or an unsupported extension.
    """
    path = Path(path)
    dtype = value_dtype(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, not a vector file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass  # np.memmap's own error for an unreadable file names no path
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    if size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), expected at least one record")
    if size < 4:
        raise ValueError(
            f"{path}: truncated file: record 0 at byte offset 0 has {size} of 4 header bytes"
        )
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    d = int(raw[:4].view("<i4")[0])
    if d <= 0 or d > MAX_DIM:
        raise ValueError(
            f"{path}: record 0 at byte offset 0 has invalid dimension {d} "
            f"(expected 1..{MAX_DIM}); is this really a {path.suffix} file?"
        )
    rec = 4 + d * dtype.itemsize
    n = size // rec
    _check_dims(path, raw, d, rec, n)
    if size % rec:
        off = n * rec
        raise ValueError(
            f"{path}: truncated file: record {n} at byte offset {off} has "
            f"{size - off} of {rec} bytes (dimension {d}, file size {size})"
        )
    view = np.ndarray(shape=(n, d), dtype=dtype, buffer=raw, offset=4,
                      strides=(rec, dtype.itemsize))
    if mmap:
        return view
    return np.ascontiguousarray(view)


def _check_dims(path: Path, raw: np.memmap, d: int, rec: int, n: int,
                chunk: int = 1 << 20) -> None:
    """Vectorised check of the dimension column, in chunks of records."""
    if n == 0:
        return
    dims = np.ndarray(shape=(n,), dtype="<i4", buffer=raw, offset=0, strides=(rec,))
    for i0 in range(0, n, chunk):
        bad = np.flatnonzero(dims[i0:i0 + chunk] != d)
        if bad.size:
            i = i0 + int(bad[0])
            raise ValueError(
                f"{path}: record {i} at byte offset {i * rec} has dimension "
                f"{int(dims[i])}, but record 0 has dimension {d}"
            )


def iter_float32(x: np.ndarray, chunk_size: int = 65536, start: int = 0,
                 stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(offset, float32 chunk)`` over rows ``start:stop`` of an (N, d) array.

    Only one chunk is converted at a time, so a memory-mapped uint8 base stays on disk.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    stop = x.shape[0] if stop is None else min(stop, x.shape[0])
    for i0 in range(start, stop, chunk_size):
        yield i0, np.ascontiguousarray(x[i0:min(i0 + chunk_size, stop)], dtype=np.float32)


def first_non_finite(x, chunk_size: int = 65536, stop: int | None = None) -> int | None:
    """Index of the first of rows ``:stop`` of ``x`` that holds a NaN or an infinity, else None.

    Streamed in chunks (one pass, one chunk in memory), so it suits a memory-mapped 1M x 128
    base or an HDF5 dataset; integer arrays (.bvecs, .ivecs) are finite by construction.
    """
    if np.dtype(x.dtype).kind not in "fc":
        return None
    stop = x.shape[0] if stop is None else min(stop, x.shape[0])
    for i0 in range(0, stop, chunk_size):
        c = np.asarray(x[i0:min(i0 + chunk_size, stop)])
        bad = ~np.isfinite(c).all(axis=1)
        if bad.any():
            return i0 + int(np.argmax(bad))
    return None


def to_float32(x: np.ndarray, chunk_size: int = 65536) -> np.ndarray:
    """A contiguous float32 copy of ``x``, converted chunk by chunk (no float64 temp)."""
    out = np.empty(x.shape, dtype=np.float32)
    for i0, c in iter_float32(x, chunk_size):
        out[i0:i0 + c.shape[0]] = c
    return out


def write_vecs(path: str | os.PathLike, array: np.ndarray, chunk_size: int = 65536) -> Path:
    """Write an (N, d) array atomically (vqbench.common.atomic).

    The extension decides the stored type; values that do not fit it (non-integers or
    out-of-range values for .ivecs/.bvecs) raise ValueError instead of wrapping.
    """
    path = Path(path)
    dtype = value_dtype(path)
    a = np.asarray(array)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{path}: write_vecs needs a non-empty 2-D array, got shape {a.shape}")
    n, d = a.shape
    if dtype.kind in "iu":
        if a.dtype.kind not in "iub":
            if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise ValueError(f"{path}: {path.suffix} stores integers; got non-integer values")
        info = np.iinfo(dtype)
        lo, hi = a.min(), a.max()
        if lo < info.min or hi > info.max:
            raise ValueError(
                f"{path}: values {lo}..{hi} do not fit {path.suffix} ({info.min}..{info.max})"
            )
    rec_dtype = np.dtype([("d", "<i4"), ("v", dtype, (d,))])
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for i0 in range(0, n, chunk_size):
            c = a[i0:i0 + chunk_size]
            recs = np.empty(c.shape[0], dtype=rec_dtype)
            recs["d"] = d
            recs["v"] = c
            recs.tofile(f)
    return path
