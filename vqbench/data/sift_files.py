"""Where the SIFT1M-style datasets live: download addresses, the default root, the split files
of a TEXMEX layout, and one-line messages that say how to get a missing file.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from vqbench.data.home import data_home

log = logging.getLogger(__name__)

TEXMEX_URL = "ftp://ftp.irisa.fr/local/texmex/corpus/sift.tar.gz"
TEXMEX_MD5 = "b23d1b3b2ee8469d819b61ca900ef0ed"  # published in the corpus' MD5SUM file
HDF5_URL = "http://ann-benchmarks.com/sift-128-euclidean.hdf5"
HDF5_NAME = "sift-128-euclidean.hdf5"


class DatasetNotFound(FileNotFoundError):
    """A dataset file is missing; the message says how to get it."""


def default_root(name: str) -> Path:
    """Where dataset ``name`` lives when dataset.root is null: <data home>/<name>."""
    return data_home() / name


def find_split(root: Path, prefix: str, split: str) -> Path:
    """The file of ``split`` (base, learn, query) under ``root``: {prefix}_{split}.fvecs or .bvecs."""
    cands = [root / f"{prefix}_{split}{ext}" for ext in (".fvecs", ".bvecs")]
    found = [p for p in cands if p.is_file()]
    if not found:
        dirs = [p for p in cands if p.is_dir()]
        if dirs:
            raise DatasetNotFound(f"{dirs[0]} is a directory, not a vector file (dataset.root={root}, "
                                  f"dataset.prefix={prefix})")
        raise DatasetNotFound(missing_message(root, prefix, f"{prefix}_{split}.fvecs (or .bvecs)"))
    if len(found) > 1:
        log.warning("both %s and %s exist; using %s", found[0].name, found[1].name, found[0].name)
    return found[0]


def unreadable_dir(root: Path) -> str | None:
    """Why ``root`` cannot be listed (permission denied, ...), or None."""
    try:
        os.listdir(root)
    except OSError as e:
        return f"dataset directory {root} cannot be read ({e.strerror or e})"
    return None


def missing_message(root: Path, prefix: str, what: str) -> str:
    """Why ``what`` is not found under ``root``, and how to get it."""
    if not root.is_dir():
        if root.exists():
            return f"dataset.root={root} is not a directory"
        where = f"dataset directory {root} does not exist"
    elif unreadable_dir(root):
        return f"{unreadable_dir(root)}: check its permissions or set dataset.root=DIR"
    else:
        where = f"missing {what} in {root}"
    how = (f"run `vqbench-data download sift1m --root {root}`" if prefix == "sift"
           else "check dataset.prefix")
    return f"{where}: {how}, or set dataset.root=DIR (and dataset.prefix=...) to an existing copy"


def ann_files(dcfg) -> dict[str, Path]:
    """The files an ANN dataset section reads (for the run's data checksums), found as the
    loaders find them: TEXMEX base/learn/query (.fvecs or .bvecs) + ground truth, or the HDF5 file."""
    root = Path(dcfg["root"]).expanduser() if dcfg["root"] else None
    if dcfg["name"] == "sift1m_hdf5":
        return {"hdf5": root / dcfg["file"] if root else default_root("sift1m_hdf5") / HDF5_NAME}
    root = root or default_root("sift1m")
    prefix = dcfg["prefix"]
    files = {s: find_split(root, prefix, s) for s in ("base", "learn", "query")}
    files["groundtruth"] = root / f"{prefix}_groundtruth.ivecs"
    return files
