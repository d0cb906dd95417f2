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

``dataset.genuine_test`` (either dataset) names an ``.npz`` of test images with their original,
lossless pixels (``test_images`` uint8 [N, H, W, 3], as torchvision's ``CIFAR10.data``), scored
beside the test split; e.g. ``cifar10-genuine-5k.npz`` when training on a lossy JPEG copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common.atomic import atomic_dir, atomic_path
from ..common.checks import ConfigError, check_range
from ..common.progress import progress as progress_bar
from .archive import extract, locked_dir
from .download import download
from .home import data_home

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
DECODED_FORMAT = 1  # bump when the decoded-cache layout changes
TMP_PREFIX = ".tmp-"  # temporary extraction trees in <cache>/extracted/


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


# ---------------------------------------------------------------------------- CIFAR-10
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


# ---------------------------------------------------------------------------- image folders
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
    key = _listing_key(tree, listing)
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
    try:
        _atomic_torch_save(
            {"format": DECODED_FORMAT, "train": splits.train, "train_labels": splits.train_labels,
             "test": splits.test, "test_labels": splits.test_labels, "classes": list(classes)},
            cached,
        )
    except (OSError, RuntimeError) as e:  # a cache only saves time: go on without it
        warnings.warn(f"cannot write the decoded-image cache {cached} ({e}); the next run decodes again",
                      stacklevel=2)
    return splits


def read_decoded_cache(cached: Path) -> dict[str, Any] | None:
    """The decoded-image cache at ``cached``, or None when it is absent, from another
    format, or unreadable (truncated, corrupt: it is removed with a warning and rebuilt)."""
    if not cached.is_file():
        return None
    keys = ("train", "train_labels", "test", "test_labels", "classes")
    try:
        blob = torch.load(cached, weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != DECODED_FORMAT:
            return None
        if not all(k in blob for k in keys):
            raise ValueError(f"missing {[k for k in keys if k not in blob]}")
        return blob
    except Exception as e:  # torch raises RuntimeError, pickle/zip errors, EOFError...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        warnings.warn(f"decoded-image cache {cached} is unreadable ({reason}); removed it, decoding the images again",
                      stacklevel=2)
        cached.unlink(missing_ok=True)
        return None


def find_split_root(path: Path, what: str) -> Path:
    """``path`` if it holds train/ and test/, else its single subdirectory that does."""
    if (path / "train").is_dir() and (path / "test").is_dir():
        return path
    subdirs = [p for p in path.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / "train").is_dir() and (subdirs[0] / "test").is_dir():
        return subdirs[0]
    raise DatasetError(f"{what}: expected train/<class>/* and test/<class>/* inside {path}")


def extract_cached(archive: Path, cache: Path) -> Path:
    """Extract ``archive`` once into <cache>/extracted/<name>-<size>-<mtime>; return that directory.

    The tree is extracted into a temporary directory next to it and renamed into place in
    one step, so an interrupted extraction never leaves a half tree under the final name.
    """
    st = archive.stat()
    stem = archive.name
    for suffix in ARCHIVE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = cache / "extracted" / f"{stem}-{st.st_size}-{st.st_mtime_ns}"
    if target.is_dir():
        return target
    log.info("extracting %s into the cache (once)", archive.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked_dir(target.parent, TMP_PREFIX):  # also removes what a killed extraction left
        if target.is_dir():  # a concurrent run extracted it while we waited
            return target
        with atomic_dir(target, prefix=f"{TMP_PREFIX}{target.name}.") as tmp:
            try:
                extract(archive, tmp)
            except ValueError as e:
                raise DatasetError(f"dataset.root={archive}: {e}") from None
    return target


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


def _listing_key(tree: Path, listing: dict) -> str:
    """Digest of every file's relative path, size and mtime (changes when any image does)."""
    h = hashlib.sha256(str(tree.resolve()).encode())
    for split in ("train", "test"):
        for f in listing[split][1]:
            st = f.stat()
            h.update(f"{f.relative_to(tree)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


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


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
