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
The common logic is in ann_dataset.py, where the files are (and how to get them) in sift_files.py.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vqbench.data.ann_dataset import ANNDataset, check_limit
from vqbench.data.home import data_home
from vqbench.data.sift_files import (
    HDF5_NAME,
    HDF5_URL,
    TEXMEX_MD5,
    TEXMEX_URL,
    DatasetNotFound,
    ann_files,
    default_root,
    find_split,
    missing_message,
    unreadable_dir,
)
from vqbench.data.vecs import read_vecs, to_float32

__all__ = ["ANNDataset", "AnnBenchmarksHDF5", "DatasetNotFound", "HDF5_NAME", "HDF5_URL", "TEXMEX_MD5", "TEXMEX_URL",
           "TexmexDataset", "ann_files", "data_home", "default_root", "load_dataset"]


class TexmexDataset(ANNDataset):
    """TEXMEX layout under ``root``: {prefix}_{base,learn,query}.{fvecs,bvecs} + groundtruth."""

    def __init__(self, root: str | os.PathLike | None, prefix: str,
                 max_base=None, max_queries=None, max_train=None):
        super().__init__(max_base, max_queries, max_train)
        self.root = Path(root).expanduser() if root is not None else default_root("sift1m")
        self.prefix = prefix
        if self.root.is_dir() and unreadable_dir(self.root):
            raise DatasetNotFound(missing_message(self.root, prefix, ""))
        self.paths = {s: find_split(self.root, prefix, s) for s in ("base", "learn", "query")}
        gt = self.root / f"{prefix}_groundtruth.ivecs"
        if gt.is_dir():
            raise DatasetNotFound(f"{gt} is a directory, not a vector file (dataset.root={self.root}, "
                                  f"dataset.prefix={prefix})")
        if not gt.is_file():
            raise DatasetNotFound(missing_message(self.root, prefix, gt.name))
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
        n = check_limit("max_train", max_train) or self.max_train or self.xt.shape[0]
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
            if self.path.parent.is_dir() and unreadable_dir(self.path.parent):
                raise DatasetNotFound(f"{unreadable_dir(self.path.parent)}: check its permissions")
            raise DatasetNotFound(
                f"missing {self.path}: run `vqbench-data download sift1m_hdf5 --root {self.path.parent}`"
                f", or set dataset.root=DIR to a directory holding {self.path.name}"
            )
        self.train_size = check_limit("train_size", train_size)
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
        n = check_limit("max_train", max_train) or self.max_train or self.train_size
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
