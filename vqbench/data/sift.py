"""SIFT1M-style ANN datasets, in the style of faiss ``contrib/datasets.py``.

A dataset exposes ``dim``, ``nb``, ``nq``, ``get_train(max_train)``,
``database_iterator(bs)`` (float32 chunks), ``get_database()``, ``get_queries()`` and
``get_groundtruth(k)``. Two sources:

* ``TexmexDataset(root, prefix)``: {prefix}_base / _learn / _query (.fvecs or .bvecs,
  detected per split) and {prefix}_groundtruth.ivecs, memory-mapped.
* ``AnnBenchmarksHDF5(path)``: ann-benchmarks' sift-128-euclidean.hdf5 (train / test /
  neighbors); codebooks train on a seeded sample of ``train``.

``max_base`` / ``max_queries`` cut the base / queries to a prefix. When the base is cut,
the ground truth is recomputed by exact search over the cut base (``gt_recomputed``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vqbench.ann.search import knn
from vqbench.common.checks import check_range
from vqbench.data.home import data_home
from vqbench.data.vecs import first_non_finite, read_vecs, to_float32

log = logging.getLogger(__name__)

TEXMEX_URL = "ftp://ftp.irisa.fr/local/texmex/corpus/sift.tar.gz"
TEXMEX_MD5 = "b23d1b3b2ee8469d819b61ca900ef0ed"  # published in the corpus' MD5SUM file
HDF5_URL = "http://ann-benchmarks.com/sift-128-euclidean.hdf5"
HDF5_NAME = "sift-128-euclidean.hdf5"


class DatasetNotFound(FileNotFoundError):
    """A dataset file is missing; the message says how to get it."""


def default_root(name: str) -> Path:
    return data_home() / name


def _check_limit(name: str, value) -> int | None:
    check_range(f"dataset.{name}", value, 1, allow_none=True, integer=True)
    return None if value is None else int(value)


class ANNDataset:
    """Common logic: prefixes of base/queries and ground-truth recomputation."""

    dim: int
    gt_recomputed: bool = False
    chunk_size: int = 131072

    def __init__(self, max_base=None, max_queries=None, max_train=None):
        self.max_base = _check_limit("max_base", max_base)
        self.max_queries = _check_limit("max_queries", max_queries)
        self.max_train = _check_limit("max_train", max_train)
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


def _find_split(root: Path, prefix: str, split: str) -> Path:
    cands = [root / f"{prefix}_{split}{ext}" for ext in (".fvecs", ".bvecs")]
    found = [p for p in cands if p.is_file()]
    if not found:
        dirs = [p for p in cands if p.is_dir()]
        if dirs:
            raise DatasetNotFound(f"{dirs[0]} is a directory, not a vector file (dataset.root={root}, "
                                  f"dataset.prefix={prefix})")
        raise DatasetNotFound(_missing_message(root, prefix, f"{prefix}_{split}.fvecs (or .bvecs)"))
    if len(found) > 1:
        log.warning("both %s and %s exist; using %s", found[0].name, found[1].name, found[0].name)
    return found[0]


def _unreadable_dir(root: Path) -> str | None:
    """Why ``root`` cannot be listed (permission denied, ...), or None."""
    try:
        os.listdir(root)
    except OSError as e:
        return f"dataset directory {root} cannot be read ({e.strerror or e})"
    return None


def _missing_message(root: Path, prefix: str, what: str) -> str:
    if not root.is_dir():
        if root.exists():
            return f"dataset.root={root} is not a directory"
        where = f"dataset directory {root} does not exist"
    elif _unreadable_dir(root):
        return f"{_unreadable_dir(root)}: check its permissions or set dataset.root=DIR"
    else:
        where = f"missing {what} in {root}"
    how = (f"run `vqbench-data download sift1m --root {root}`" if prefix == "sift"
           else "check dataset.prefix")
    return f"{where}: {how}, or set dataset.root=DIR (and dataset.prefix=...) to an existing copy"


class TexmexDataset(ANNDataset):
    """TEXMEX layout under ``root``: {prefix}_{base,learn,query}.{fvecs,bvecs} + groundtruth."""

    def __init__(self, root: str | os.PathLike | None, prefix: str,
                 max_base=None, max_queries=None, max_train=None):
        super().__init__(max_base, max_queries, max_train)
        self.root = Path(root).expanduser() if root is not None else default_root("sift1m")
        self.prefix = prefix
        if self.root.is_dir() and _unreadable_dir(self.root):
            raise DatasetNotFound(_missing_message(self.root, prefix, ""))
        self.paths = {s: _find_split(self.root, prefix, s) for s in ("base", "learn", "query")}
        gt = self.root / f"{prefix}_groundtruth.ivecs"
        if gt.is_dir():
            raise DatasetNotFound(f"{gt} is a directory, not a vector file (dataset.root={self.root}, "
                                  f"dataset.prefix={prefix})")
        if not gt.is_file():
            raise DatasetNotFound(_missing_message(self.root, prefix, gt.name))
        self.paths["groundtruth"] = gt
        self.xb = read_vecs(self.paths["base"])
        self.xt = read_vecs(self.paths["learn"])
        self.xq = read_vecs(self.paths["query"])
        self.gt = read_vecs(gt)
        self.dim = self.xb.shape[1]
        for s, a in (("learn", self.xt), ("query", self.xq)):
            if a.shape[1] != self.dim:
                raise ValueError(f"{self.paths[s]}: dimension {a.shape[1]} differs from the base's {self.dim}")
        if self.gt.shape[0] != self.xq.shape[0]:
            raise ValueError(f"{gt}: {self.gt.shape[0]} rows for {self.xq.shape[0]} queries")

    def __repr__(self) -> str:
        return f"TexmexDataset({self.root}, prefix={self.prefix!r})"

    def source(self, split: str) -> str:
        return str(self.paths[split])

    def training_rows(self) -> tuple[Any, int]:
        return self.xt, min(self.max_train or self.xt.shape[0], self.xt.shape[0])

    def get_train(self, max_train: int | None = None) -> np.ndarray:
        n = _check_limit("max_train", max_train) or self.max_train or self.xt.shape[0]
        return to_float32(self.xt[:min(n, self.xt.shape[0])])


class AnnBenchmarksHDF5(ANNDataset):
    """ann-benchmarks HDF5 (train = base, test = queries, neighbors = ground truth).

    It has no learn split: codebooks train on ``train_size`` rows of ``train`` drawn
    without replacement with ``seed`` (from the cut base when max_base is set).
    """

    def __init__(self, path: str | os.PathLike | None, train_size: int,
                 seed: int, max_base=None, max_queries=None, max_train=None):
        super().__init__(max_base, max_queries, max_train)
        import h5py

        self.path = Path(path).expanduser() if path is not None else default_root("sift1m_hdf5") / HDF5_NAME
        if not self.path.is_file():
            if self.path.parent.is_dir() and _unreadable_dir(self.path.parent):
                raise DatasetNotFound(f"{_unreadable_dir(self.path.parent)}: check its permissions")
            raise DatasetNotFound(
                f"missing {self.path}: run `vqbench-data download sift1m_hdf5 --root {self.path.parent}`"
                f", or set dataset.root=DIR to a directory holding {self.path.name}"
            )
        self.train_size = _check_limit("train_size", train_size)
        self.seed = int(seed)
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({e})") from None
        for key in ("train", "test", "neighbors"):
            if key not in self.h5:
                raise ValueError(f"{self.path}: no dataset {key!r} (has {sorted(self.h5.keys())})")
        self.xb, self.xq, self.gt = self.h5["train"], self.h5["test"], self.h5["neighbors"]
        for key, a in (("train", self.xb), ("test", self.xq), ("neighbors", self.gt)):
            if len(a.shape) != 2 or a.shape[0] == 0:
                raise ValueError(f"{self.path}: {key!r} has shape {a.shape}, expected a non-empty 2-D array")
        self.dim = self.xb.shape[1]
        if self.xq.shape[1] != self.dim:
            raise ValueError(f"{self.path}: 'test' has dimension {self.xq.shape[1]}, 'train' has {self.dim}")
        if self.gt.shape[0] != self.xq.shape[0]:
            raise ValueError(f"{self.path}: 'neighbors' has {self.gt.shape[0]} rows for {self.xq.shape[0]} queries")

    def __repr__(self) -> str:
        return f"AnnBenchmarksHDF5({self.path})"

    def source(self, split: str) -> str:
        key = {"base": "train", "learn": "train", "query": "test", "groundtruth": "neighbors"}[split]
        return f"{self.path} dataset {key!r}"

    def get_train(self, max_train: int | None = None) -> np.ndarray:
        n = _check_limit("max_train", max_train) or self.max_train or self.train_size
        n = min(n, self.nb)
        rng = np.random.default_rng(self.seed)
        idx = np.sort(rng.choice(self.nb, size=n, replace=False))
        out = np.empty((n, self.dim), dtype=np.float32)
        j = 0
        for i0 in range(0, self.nb, self.chunk_size):  # contiguous reads, then select
            i1 = min(i0 + self.chunk_size, self.nb)
            lo, hi = np.searchsorted(idx, [i0, i1])
            if hi > lo:
                out[j:j + hi - lo] = self.xb[i0:i1][idx[lo:hi] - i0]
                j += hi - lo
        return out


def ann_files(dcfg) -> dict[str, Path]:
    """The files an ANN dataset section reads (for the run's data checksums), found as the
    loaders find them: TEXMEX base/learn/query (.fvecs or .bvecs) + ground truth, or the HDF5 file."""
    root = Path(dcfg["root"]).expanduser() if dcfg["root"] else None
    if dcfg["name"] == "sift1m_hdf5":
        return {"hdf5": root / dcfg["file"] if root else default_root("sift1m_hdf5") / HDF5_NAME}
    root = root or default_root("sift1m")
    prefix = dcfg["prefix"]
    files = {s: _find_split(root, prefix, s) for s in ("base", "learn", "query")}
    files["groundtruth"] = root / f"{prefix}_groundtruth.ivecs"
    return files


def load_dataset(dcfg, seed: int) -> ANNDataset:
    """Build the dataset a (complete) ``dataset`` config section names (sift1m | sift1m_hdf5);
    `seed`: the run's, for an HDF5 training sample whose dataset.seed is null."""
    name = dcfg["name"]
    if name not in ("sift1m", "sift1m_hdf5"):
        raise ValueError(f"dataset.name must be sift1m or sift1m_hdf5 for the ANN experiment, got {name!r}")
    common = dict(max_base=dcfg["max_base"], max_queries=dcfg["max_queries"], max_train=dcfg["max_train"])
    if name == "sift1m":
        return TexmexDataset(dcfg["root"], dcfg["prefix"], **common)
    root = dcfg["root"]
    path = Path(root).expanduser() / dcfg["file"] if root else None
    return AnnBenchmarksHDF5(path, train_size=dcfg["train_size"],
                             seed=seed if dcfg["seed"] is None else dcfg["seed"], **common)
