"""Exact k-NN over a base streamed in chunks, and recall@T.

``knn`` keeps one faiss.ResultHeap of size nq x k and feeds it the top-k of each base
chunk (faiss.knn: blocked BLAS + heap), so memory is O(nq*k + chunk*d), never nq x nb.
With the decoded chunks of a quantizer as the base this is exact asymmetric-distance
search: distances are ||q - x_hat||^2.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import faiss
import numpy as np

DEFAULT_TS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 10, 100, 1000, 10000)


def recall_ts(max_t: int | None = None, ts: Sequence[int] = DEFAULT_TS) -> list[int]:
    """Sorted, unique T values, keeping those <= max_t."""
    out = sorted(set(int(t) for t in ts))
    return [t for t in out if max_t is None or t <= max_t]


def knn(queries: np.ndarray, chunks: Iterable[np.ndarray], k: int,
        progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact L2 k-NN of ``queries`` over the concatenation of ``chunks``.

    ``chunks`` yields float32 (n_i, d) arrays in base order; ids count across chunks.
    Returns (D, I): float32 squared distances and int64 ids, shape (nq, k), nearest
    first; when the base has fewer than k vectors the tail is (inf, -1).
    ``progress`` is an optional tqdm-like object updated with the rows consumed.
    """
    xq = np.ascontiguousarray(queries, dtype=np.float32)
    if xq.ndim != 2:
        raise ValueError(f"queries must be 2-D, got shape {xq.shape}")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    nq, d = xq.shape
    heap = faiss.ResultHeap(nq, k)
    i0 = 0
    for xb in chunks:
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        if xb.ndim != 2 or xb.shape[1] != d:
            raise ValueError(f"base chunk at row {i0} has shape {xb.shape}, expected (*, {d})")
        n = xb.shape[0]
        if n:
            kc = min(k, n)
            D, I = faiss.knn(xq, xb, kc)
            heap.add_result(D, I + i0)
        i0 += n
        if progress is not None:
            progress.update(n)
    heap.finalize()
    D, I = heap.D, heap.I
    D[I < 0] = np.inf  # unfilled slots (base smaller than k) hold FLT_MAX
    return D, I


def recall_at(ids: np.ndarray, gt: np.ndarray, ts: Sequence[int] = DEFAULT_TS) -> dict[int, float]:
    """Fraction of queries whose true nearest neighbour ``gt[:, 0]`` is in ``ids[:, :T]``.

    ``ids`` (nq, k) are search results nearest first; ``gt`` is (nq,) or (nq, >=1).
    Every T must be <= k.
    """
    ids = np.asarray(ids)
    gt = np.asarray(gt)
    nn = gt[:, 0] if gt.ndim == 2 else gt
    if ids.ndim != 2 or ids.shape[0] != nn.shape[0]:
        raise ValueError(f"ids shape {ids.shape} does not match ground truth shape {gt.shape}")
    # rank of the true neighbour in each result list (k if absent)
    hit = ids == nn[:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1), ids.shape[1])
    out = {}
    for t in recall_ts(None, ts):
        if t > ids.shape[1]:
            raise ValueError(f"recall@{t} needs at least {t} results per query, got {ids.shape[1]}")
        out[t] = float(np.mean(rank < t))
    return out
