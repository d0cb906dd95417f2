"""What the image loaders return: train and test images as uint8 tensors (``ImageSplits``),
their seeded subsets, the optional genuine test images, and the one-line ``DatasetError``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..common.checks import ConfigError, check_range


class DatasetError(ConfigError):
    """A dataset cannot be loaded; the message is one line naming the path or field
    (a ConfigError, so the CLI prints it as one line)."""


@dataclass(frozen=True)
class ImageSplits:
    """Train and test images as uint8 [N, 3, H, W] with int64 labels [N]."""

    train: torch.Tensor
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    source: str
    genuine: torch.Tensor | None = None  # dataset.genuine_test's images (never subset), or None

    def subset(self, max_train: int | None, max_test: int | None, seed: int) -> "ImageSplits":
        """Seeded random subsets (same seed, same images); ``None`` keeps a split whole."""
        tr = seeded_subset(self.train.shape[0], max_train, seed, "dataset.max_train")
        te = seeded_subset(self.test.shape[0], max_test, seed + 1, "dataset.max_test")
        return ImageSplits(
            self.train[tr], self.train_labels[tr], self.test[te], self.test_labels[te], self.classes, self.source,
            self.genuine,
        )


def seeded_subset(n: int, limit: int | None, seed: int, field: str) -> torch.Tensor:
    """Sorted indices of ``limit`` of ``n`` items drawn with ``seed`` (all of them when limit is None)."""
    if limit is None:
        return torch.arange(n)
    check_range(field, limit, 1, allow_none=True, integer=True)
    if limit >= n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=gen)[:limit].sort().values


def load_genuine_test(path: str | os.PathLike) -> torch.Tensor:
    """``test_images`` of an .npz (uint8 [N, H, W, 3]) as uint8 [N, 3, H, W]."""
    path = Path(path).expanduser()
    where = f"dataset.genuine_test={path}"
    if not path.is_file():
        raise DatasetError(f"{where}: {'is a directory, not' if path.is_dir() else 'no such file; expected'} an .npz "
                           f"holding test_images")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "test_images" not in npz.files:
                raise DatasetError(f"{where}: no array 'test_images' (has {sorted(npz.files)})")
            images = npz["test_images"]
    except (OSError, ValueError, EOFError) as e:  # not a zip, truncated, pickled arrays
        raise DatasetError(f"{where}: not a readable .npz ({e})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise DatasetError(f"{where}: test_images is {images.dtype} {images.shape}, expected uint8 [N, H, W, 3]")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
