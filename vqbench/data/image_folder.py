"""Image folders for the VQ-VAE (``dataset.name=image_folder``): a ``train/<class>/*`` +
``test/<class>/*`` tree, or a tar archive of one, decoded once into uint8 tensors; the
extracted trees and decoded tensors are cached (image_cache.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..common.progress import progress as progress_bar
from .image_cache import ARCHIVE_SUFFIXES, extract_cached, listing_key, read_decoded_cache, write_decoded_cache
from .image_splits import DatasetError, ImageSplits


def load_image_folder(root: str | os.PathLike | None, cache: Path, progress: bool = False) -> ImageSplits:
    """A train/<class>/* + test/<class>/* tree (or a tar archive of one), decoded once and cached."""
    if not root:
        raise DatasetError(
            "dataset.root must name a directory with train/<class>/* and test/<class>/* "
            "or a .tar.gz of one (e.g. dataset.root=../shared/data/cifar10/cifar10-jpg.tar.gz)"
        )
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset.root={path} does not exist")
    if path.is_file():
        if not path.name.endswith(ARCHIVE_SUFFIXES):
            raise DatasetError(f"dataset.root={path} is a file but not a {'/'.join(ARCHIVE_SUFFIXES)} archive")
        tree = find_split_root(extract_cached(path, cache), f"dataset.root={path}")
    else:
        tree = find_split_root(path, f"dataset.root={path}")

    listing = {split: _list_split(tree / split) for split in ("train", "test")}
    classes = listing["train"][0]
    if listing["test"][0] != classes:
        raise DatasetError(
            f"dataset.root={path}: test/ classes {listing['test'][0]} differ from train/ classes {classes}"
        )
    key = listing_key(tree, listing)
    cached = cache / "decoded" / f"image_folder-{key}.pt"
    blob = read_decoded_cache(cached)
    if blob is not None:
        return ImageSplits(
            blob["train"], blob["train_labels"], blob["test"], blob["test_labels"],
            tuple(blob["classes"]), f"image folder {path}",
        )
    parts = []
    for split in ("train", "test"):
        _, files, labels = listing[split]
        parts += [decode_images(files, progress, desc=f"decode {split} images (once)"),
                  torch.tensor(labels, dtype=torch.long)]
    splits = ImageSplits(*parts, classes=tuple(classes), source=f"image folder {path}")
    write_decoded_cache(splits, cached)
    return splits


def find_split_root(path: Path, what: str) -> Path:
    """``path`` if it holds train/ and test/, else its single subdirectory that does."""
    if (path / "train").is_dir() and (path / "test").is_dir():
        return path
    subdirs = [p for p in path.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / "train").is_dir() and (subdirs[0] / "test").is_dir():
        return subdirs[0]
    raise DatasetError(f"{what}: expected train/<class>/* and test/<class>/* inside {path}")


def _list_split(split_dir: Path) -> tuple[list[str], list[Path], list[int]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    if not split_dir.is_dir():
        raise DatasetError(f"{split_dir} is missing: expected {split_dir.name}/<class>/<image>")
    try:
        classes, class_to_idx = find_classes(str(split_dir))
        samples = make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS)
    except (FileNotFoundError, OSError) as e:
        raise DatasetError(f"{split_dir}: {e}") from None
    return classes, [Path(p) for p, _ in samples], [c for _, c in samples]


def decode_images(files: list[Path], progress: bool = False, desc: str = "decode images") -> torch.Tensor:
    """Decode image files to one uint8 tensor [N, 3, H, W]; all images must share H x W."""
    from PIL import Image

    if not files:
        raise DatasetError("no images to decode")
    arrays = []
    shape = None
    for f in progress_bar(files, desc=desc, enabled=progress, unit="img"):
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise DatasetError(f"{f}: cannot decode image ({e})") from None
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DatasetError(f"{f}: image is {a.shape[1]}x{a.shape[0]}, expected {shape[1]}x{shape[0]} like {files[0]}")
        arrays.append(a)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
