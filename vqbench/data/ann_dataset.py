"""The common part of the ANN datasets (sift.py's readers): cuts of the base and queries to a
prefix (``max_base``, ``max_queries``, ``max_train``), chunked float32 reads, ground truth
(recomputed by exact search over a cut base) and the value checks before any work.
"""
from __future__ import annotations

import logging
from typing import Any, Iterator

import numpy as np

from vqbench.ann.search import knn
from vqbench.common.checks import check_range
from vqbench.data.vecs import first_non_finite

log = logging.getLogger(__name__)


def check_limit(name: str, value) -> int | None:
    """``dataset.<name>`` as an int >= 1, or None (no limit)."""
    check_range(f"dataset.{name}", value, 1, allow_none=True, integer=True)
    return None if value is None else int(value)


class ANNDataset:
    """Common logic: prefixes of base/queries and ground-truth recomputation."""

    dim: int
    gt_recomputed: bool = False
    chunk_size: int = 131072

    def __init__(self, max_base=None, max_queries=None, max_train=None):
        self.max_base = check_limit("max_base", max_base)
        self.max_queries = check_limit("max_queries", max_queries)
        self.max_train = check_limit("max_train", max_train)
        self._gt_cache: np.ndarray | None = None

    # Subclasses set the raw (uncut) arrays; memory maps or HDF5 datasets, sliced lazily.
    xb: Any  # base (nb_total, dim)
    xq: Any  # queries (nq_total, dim)
    gt: Any  # ground-truth ids (nq_total, >= 1)

    @property
    def nb_total(self) -> int:
        return self.xb.shape[0]

    @property
    def nq_total(self) -> int:
        return self.xq.shape[0]

    @property
    def nb(self) -> int:
        return self.nb_total if self.max_base is None else min(self.max_base, self.nb_total)

    @property
    def nq(self) -> int:
        return self.nq_total if self.max_queries is None else min(self.max_queries, self.nq_total)

    @property
    def base_is_cut(self) -> bool:
        return self.nb < self.nb_total

    def database_iterator(self, bs: int | None = None, start: int = 0,
                          stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield the (cut) base as float32 chunks of ``bs`` rows."""
        bs = bs or self.chunk_size
        stop = self.nb if stop is None else min(stop, self.nb)
        for i0 in range(start, stop, bs):
            yield np.ascontiguousarray(self.xb[i0:min(i0 + bs, stop)], dtype=np.float32)

    def get_database(self) -> np.ndarray:
        out = np.empty((self.nb, self.dim), dtype=np.float32)
        i0 = 0
        for c in self.database_iterator():
            out[i0:i0 + len(c)] = c
            i0 += len(c)
        return out

    def get_queries(self) -> np.ndarray:
        return np.ascontiguousarray(self.xq[:self.nq], dtype=np.float32)

    def get_groundtruth(self, k: int | None = None) -> np.ndarray:
        """int64 (nq, k) ids of the exact nearest neighbours in the (cut) base."""
        if self._gt_cache is None:
            if self.base_is_cut:
                self._gt_cache = self._recompute_groundtruth()
            else:
                gt = np.asarray(self.gt[:self.nq], dtype=np.int64)
                self._check_groundtruth(gt)
                self._gt_cache = gt
        gt = self._gt_cache
        if k is not None:
            if k > gt.shape[1]:
                raise ValueError(f"ground truth has {gt.shape[1]} neighbours per query, asked for {k}")
            gt = gt[:, :k]
        return gt

    def _check_groundtruth(self, gt: np.ndarray) -> None:
        where = self.source("groundtruth")
        if gt.shape[0] < self.nq:
            raise ValueError(f"{where}: ground truth has {gt.shape[0]} rows for {self.nq} queries")
        bad = np.flatnonzero((gt[:, 0] < 0) | (gt[:, 0] >= self.nb_total))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{where}: row {i} names base id {int(gt[i, 0])} as the nearest neighbour, "
                f"outside the base's ids 0..{self.nb_total - 1}"
            )

    def source(self, split: str) -> str:
        """Where ``split`` (base, learn, query, groundtruth) is stored, for messages."""
        return f"{self}:{split}"

    def training_rows(self) -> tuple[Any, int]:
        """The array codebooks train on and how many of its leading rows are read."""
        return self.xb, self.nb

    def check_values(self) -> None:
        """Before any work: every vector used is finite (first bad row named) and the ground
        truth names existing base vectors. One streamed pass over each split used."""
        xt, nt = self.training_rows()
        for split, x, n in (("base", self.xb, self.nb), ("learn", xt, nt), ("query", self.xq, self.nq)):
            if split == "learn" and x is self.xb:
                continue  # trains on base rows: checked above
            row = first_non_finite(x, stop=n)
            if row is not None:
                raise ValueError(f"{self.source(split)}: row {row} holds NaN or Inf; "
                                 f"every {split} vector must be finite")
        if not self.base_is_cut:  # a cut base gets exact ground truth recomputed instead
            self._check_groundtruth(np.asarray(self.gt[:self.nq], dtype=np.int64))

    def _recompute_groundtruth(self, k: int = 100) -> np.ndarray:
        k = min(k, self.nb)
        log.info("%s: base cut to %d of %d vectors; recomputing exact ground truth (k=%d)",
                    self, self.nb, self.nb_total, k)
        _, ids = knn(self.get_queries(), self.database_iterator(), k)
        self.gt_recomputed = True
        return ids

    def get_train(self, max_train: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"dim": self.dim, "nb": self.nb, "nq": self.nq, "nb_total": self.nb_total,
                "gt_recomputed": self.gt_recomputed}
