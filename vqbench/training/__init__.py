"""Optimizers that fit a quantizer's codebooks: gradient (NSVQ | STE) or classical (k-means).

Each optimizer is one module (nsvq.py, ste.py, kmeans_ema.py) whose ``OptimizerSpec`` entry is
listed in registry.py's ``OPTIMIZERS``; code elsewhere asks that entry (``optimizer_spec``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..quantizers import Quantizer
from .registry import OPTIMIZERS, gradient_optimizers, optimizer_spec, register_optimizer, unregister_optimizer
from .spec import Batches, Bottleneck, OptimizerSpec


def fit(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    device: torch.device,
    seed: int,
    progress: bool,
    batches: Batches | None = None,
) -> dict[str, float]:
    """Fit `quantizer` to `data` [N, D] with the optimizer `ocfg` configures.

    ``batches`` (n -> n fresh vectors) makes a gradient optimizer draw every batch from it
    instead of from `data`; a classical fit (k-means) refuses a stream."""
    return optimizer_spec(ocfg).fit(quantizer, data, ocfg, device, seed, progress, batches)


__all__ = ["OPTIMIZERS", "Bottleneck", "OptimizerSpec", "fit", "gradient_optimizers", "optimizer_spec",
           "register_optimizer", "unregister_optimizer"]
