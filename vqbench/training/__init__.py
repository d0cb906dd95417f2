"""How codebooks are trained: the gradient estimators (nsvq.py, ste.py, rotation.py, diveq.py,
gumbel.py, ema.py; each an ``Estimator``, estimator.py) and the optimizers that ``optimizer=<name>``
selects (one gradient optimizer per estimator, plus the classical ``kmeans``).

Both registries are in registry.py (``ESTIMATORS``, ``OPTIMIZERS``); code elsewhere asks them
(``estimator_class``, ``optimizer_spec``). Importing this package loads torch only (no faiss,
Hydra or omegaconf)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..quantizers import Quantizer
from .estimator import Estimate, Estimator
from .registry import (
    ESTIMATORS,
    OPTIMIZERS,
    estimator_class,
    gradient_optimizers,
    optimizer_spec,
    register_estimator,
    register_optimizer,
    unregister_estimator,
    unregister_optimizer,
)
from .spec import Batches, Curve, OptimizerSpec


def fit(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    device: torch.device,
    seed: int,
    progress: bool,
    batches: Batches | None = None,
    curve: Curve | None = None,
) -> dict[str, float]:
    """Fit `quantizer` to `data` [N, D] with the optimizer `ocfg` configures.

    ``batches`` (n -> n fresh vectors) makes a gradient optimizer draw every batch from it
    instead of from `data`; a classical fit (k-means) refuses a stream. ``curve(step, batch_mse,
    codes)`` is called after every gradient step (learning curves)."""
    return optimizer_spec(ocfg).fit(quantizer, data, ocfg, device, seed, progress, batches, curve)


__all__ = ["ESTIMATORS", "OPTIMIZERS", "Estimate", "Estimator", "OptimizerSpec", "estimator_class", "fit",
           "gradient_optimizers", "optimizer_spec", "register_estimator", "register_optimizer", "unregister_estimator",
           "unregister_optimizer"]
