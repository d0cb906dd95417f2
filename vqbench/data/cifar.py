"""Image datasets for the VQ-VAE: CIFAR-10 (torchvision) and image folders (ImageFolder layout).

Every loader decodes its images once into uint8 tensors [N, 3, H, W] kept in memory; the
training loop batches by indexing them, so no image is decoded per epoch.

* ``dataset.name=cifar10``: the official python archive (downloaded with its md5 when
  ``dataset.download`` is true; offline that fails with one line) read by
  ``torchvision.datasets.CIFAR10``.
* ``dataset.name=image_folder``: ``dataset.root`` is a directory holding
  ``train/<class>/*`` and ``test/<class>/*`` (``torchvision.datasets.ImageFolder``), or a
  ``.tar.gz`` of one, which is extracted once into the cache (keyed by the archive's name,
  size and mtime; the tree is renamed into place only when complete). Decoded tensors are
  cached too (keyed by every file's path, size and mtime), so later runs skip decoding.

The cache lives in ``dataset.cache_dir``, else ``$VQBENCH_DATA``, else ``~/.cache/vqbench``.
This module loads either dataset; the image folders are read in image_folder.py (cached by
image_cache.py), and image_splits.py holds what both return.

``dataset.genuine_test`` (either dataset) names an ``.npz`` of test images with their original,
lossless pixels (``test_images`` uint8 [N, H, W, 3], as torchvision's ``CIFAR10.data``), scored
beside the test split; e.g. ``cifar10-genuine-5k.npz`` when training on a lossy JPEG copy.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .archive import extract
from .download import download
from .home import data_home
from .image_cache import DECODED_FORMAT, TMP_PREFIX
from .image_folder import load_image_folder
from .image_splits import DatasetError, ImageSplits, load_genuine_test, seeded_subset

__all__ = ["DECODED_FORMAT", "TMP_PREFIX", "DatasetError", "ImageSplits", "cache_root", "image_files", "load_cifar10",
           "load_genuine_test", "load_image_folder", "load_images", "seeded_subset"]


def cache_root(dcfg: Mapping[str, Any]) -> Path:
    """dataset.cache_dir, else $VQBENCH_DATA, else ~/.cache/vqbench."""
    return data_home(dcfg["cache_dir"])


def load_images(dcfg: Mapping[str, Any], seed: int, progress: bool = False) -> ImageSplits:
    """The dataset described by a (complete) ``dataset`` config section, limited to max_train/max_test."""
    name = dcfg["name"]
    if name == "cifar10":
        splits = load_cifar10(dcfg["root"], bool(dcfg["download"]), cache_root(dcfg))
    elif name == "image_folder":
        splits = load_image_folder(dcfg["root"], cache_root(dcfg), progress)
    else:
        raise DatasetError(f"dataset.name must be 'cifar10' or 'image_folder' for image experiments, got {name!r}")
    if dcfg["genuine_test"]:
        splits = dataclasses.replace(splits, genuine=load_genuine_test(dcfg["genuine_test"]))
    return splits.subset(dcfg["max_train"], dcfg["max_test"], seed)


def image_files(dcfg: Mapping[str, Any]) -> dict[str, Path]:
    """The files an image dataset section reads (for the run's data checksums): the archive or
    tree (``images``), or CIFAR-10's batch files, and ``genuine_test``."""
    if dcfg["name"] == "cifar10":
        from torchvision.datasets import CIFAR10

        root = Path(dcfg["root"]).expanduser() if dcfg["root"] else cache_root(dcfg) / "cifar10"
        names = [n for n, _ in CIFAR10.train_list + CIFAR10.test_list]
        files = {f"cifar10/{n}": root / CIFAR10.base_folder / n for n in names}
    else:
        files = {"images": Path(dcfg["root"]).expanduser()} if dcfg["root"] else {}
    if dcfg["genuine_test"]:
        files["genuine_test"] = Path(dcfg["genuine_test"]).expanduser()
    return files


def load_cifar10(root: str | os.PathLike | None, download_ok: bool, cache: Path) -> ImageSplits:
    """CIFAR-10 from torchvision's python archive under ``root`` (default <cache>/cifar10)."""
    from torchvision.datasets import CIFAR10

    root = Path(root).expanduser() if root else cache / "cifar10"
    batches = root / CIFAR10.base_folder
    if not batches.is_dir():
        if not download_ok:
            raise DatasetError(
                f"dataset.root={root}: no {CIFAR10.base_folder}/ there and dataset.download=false; "
                f"set dataset.download=true or use dataset=image_folder dataset.root=<train/test tree or .tar.gz>"
            )
        archive = download(CIFAR10.url, root / CIFAR10.filename, md5=CIFAR10.tgz_md5)
        extract(archive, root)
    parts = []
    for train in (True, False):
        ds = CIFAR10(str(root), train=train, download=False)  # checks every batch file's md5
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        parts += [images, torch.tensor(ds.targets, dtype=torch.long)]
        classes = tuple(ds.classes)
    return ImageSplits(*parts, classes=classes, source=f"CIFAR-10 (torchvision, {root})")
