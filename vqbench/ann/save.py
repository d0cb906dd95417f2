"""The files a trained ANN run leaves in its run directory: ``codebooks.pt`` and, with
``experiment.save_index``, ``index.faiss`` (a faiss index of the encoded base, faiss_index.py)."""

from __future__ import annotations

from pathlib import Path

import faiss
import torch

from ..common.atomic import atomic_path
from ..common.errors import write_failed
from ..quantizers import Quantizer
from .faiss_index import save_index


def save_codebooks(quantizer: Quantizer, run_dir: Path) -> None:
    """``run_dir``/codebooks.pt: {"codebooks": [M, K, d] CPU tensor}, written atomically."""
    path = run_dir / "codebooks.pt"
    try:
        with atomic_path(path) as tmp:
            torch.save({"codebooks": quantizer.codebooks.detach().cpu()}, tmp)
    except (OSError, RuntimeError) as err:  # disk full: torch says RuntimeError, naming no file
        raise write_failed(path, err) from None


def save_results(quantizer: Quantizer, index: faiss.Index | None, run_dir: Path) -> None:
    """codebooks.pt (and index.faiss), after evaluation: a run that fails on the way, or while
    writing one of them (disk full), leaves neither."""
    written: list[Path] = []
    try:
        if index is not None:
            path = run_dir / "index.faiss"
            try:
                save_index(index, path)
            except (OSError, RuntimeError) as err:  # disk full: faiss says RuntimeError, a C++ message
                raise write_failed(path, err) from None
            written.append(path)
        save_codebooks(quantizer, run_dir)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
