"""Optimizers that fit a quantizer's codebooks: gradient (NSVQ | STE) or classical (k-means)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..quantizers import Quantizer
from .gradient import fit_gradient
from .kmeans import fit_kmeans

OPTIMIZERS = ("nsvq", "ste", "kmeans")


def fit(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    device: torch.device,
    seed: int,
    progress: bool = True,
    batches: Callable[[int], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Fit `quantizer` to `data` [N, D] with the optimizer named by `ocfg['name']`.

    ``batches`` (n -> n fresh vectors) makes a gradient optimizer draw every batch from it
    instead of from `data`; k-means fits the fixed `data` and refuses a stream."""
    name = ocfg["name"]
    if name in ("nsvq", "ste"):
        return fit_gradient(quantizer, data, ocfg, device, seed, progress, batches=batches)
    if name == "kmeans":
        if batches is not None:
            raise ValueError("optimizer=kmeans fits a fixed training set; it cannot draw fresh batches")
        return fit_kmeans(quantizer, data, ocfg, device, seed, progress)
    raise ValueError(f"optimizer.name must be one of {OPTIMIZERS}, got {name!r}")


__all__ = ["OPTIMIZERS", "fit"]
