"""The cache of image folders (in ``dataset.cache_dir``): archives extracted once (keyed by the
archive's name, size and mtime; the tree is renamed into place only when complete), and the
decoded tensors (keyed by every image file's path, size and mtime), so later runs skip both."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from ..common.atomic import atomic_dir, atomic_path
from .archive import extract, locked_dir
from .image_splits import DatasetError, ImageSplits

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
DECODED_FORMAT = 1  # bump when the decoded-cache layout changes
TMP_PREFIX = ".tmp-"  # temporary extraction trees in <cache>/extracted/


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


def listing_key(tree: Path, listing: dict) -> str:
    """Digest of every file's relative path, size and mtime (changes when any image does)."""
    h = hashlib.sha256(str(tree.resolve()).encode())
    for split in ("train", "test"):
        for f in listing[split][1]:
            st = f.stat()
            h.update(f"{f.relative_to(tree)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


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


def write_decoded_cache(splits: ImageSplits, cached: Path) -> None:
    """Save ``splits`` as the decoded-image cache ``cached`` (atomically); a failure only warns
    (a cache only saves time: the run goes on without it)."""
    try:
        with atomic_path(cached) as tmp:
            torch.save({"format": DECODED_FORMAT, "train": splits.train, "train_labels": splits.train_labels,
                        "test": splits.test, "test_labels": splits.test_labels, "classes": list(splits.classes)}, tmp)
    except (OSError, RuntimeError) as e:
        warnings.warn(f"cannot write the decoded-image cache {cached} ({e}); the next run decodes again",
                      stacklevel=3)
