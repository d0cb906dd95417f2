"""The ``kmeans`` optimizer: classical fits on raw vectors, EMA codebook updates in a VQ-VAE.

* Raw vectors (toy, ANN): each quantizer's own classical fit (``Quantizer.fit_kmeans``, built
  from the primitives in kmeans.py): Lloyd (VQ, PVQ), residual k-means (RVQ), AQ alternations
  (AVQ). It fits the fixed training set and cannot draw fresh batches.
* VQ-VAE: the ``ema`` estimator (ema.py): straight-through to the encoder plus beta * commitment
  loss; the codebooks get no gradient, they follow exponential moving averages of their
  assigned latents. (``optimizer=ema`` is the same estimator with the gradient optimizers'
  defaults, and on raw vectors trains by EMA steps instead of k-means.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..common.checks import ConfigError, check_positive, check_range
from ..common.options import Init, LrSchedule
from ..quantizers import Quantizer, codebook_free
from .ema import EMA
from .kmeans import fit_kmeans
from .replacement import ReplacementConfig
from .spec import Batches, BudgetConfig, Curve, OptimizerSpec


@dataclass
class KMeansConfig(BudgetConfig):
    """Classical fits: Lloyd (VQ, PVQ), residual k-means (RVQ), AQ alternations (AVQ);
    inside a VQ-VAE: EMA codebook updates. Keys marked VQ-VAE are read only there. Of the budget
    keys (BudgetConfig) it reads ``lloyd_iterations`` and ``alternations``; ``steps`` is accepted
    and ignored."""

    name: str = "kmeans"
    ema_decay: float = 0.99  # VQ-VAE: EMA decay of the codebook statistics
    batch_size: int = 512  # VQ-VAE: images per step
    lr: float = 0.001  # VQ-VAE: encoder/decoder Adam step size
    lr_schedule: LrSchedule = LrSchedule.constant  # VQ-VAE
    beta: float = 0.25  # VQ-VAE: commitment loss weight
    init: Init = Init.data  # VQ-VAE: codebook start (the classical fits seed from the data themselves)
    replacement: ReplacementConfig = field(default_factory=ReplacementConfig)  # VQ-VAE


class KMeans(OptimizerSpec):
    name = "kmeans"
    Config = KMeansConfig
    gradient = False

    def check_config(self, ocfg: Mapping[str, Any]) -> None:
        check_positive(ocfg, "optimizer", "lloyd_iterations")
        super().check_config(ocfg)
        check_range("optimizer.alternations", ocfg["alternations"], 0)
        check_range("optimizer.beta", ocfg["beta"], 0)
        check_range("optimizer.ema_decay", ocfg["ema_decay"], 0, 1, hi_open=True)

    def check_data(self, cfg: Mapping[str, Any], rows: int, source: str) -> None:
        """k-means fits K = 2^bits_per_codebook centroids to the training vectors: refuse a
        quantizer without codebooks, and fewer vectors than centroids, before any work."""
        q = cfg["quantizer"]
        if codebook_free(q):
            raise ConfigError(f"optimizer=kmeans fits codebooks; quantizer={q['name']} has none (train it with a "
                              f"gradient optimizer, e.g. optimizer=ste)")
        k = 1 << int(q["bits_per_codebook"])
        if rows < k:
            raise ConfigError(f"optimizer=kmeans: {source} gives {rows} training vectors, fewer than the {k} centroids "
                              f"of quantizer.bits_per_codebook={q['bits_per_codebook']}; "
                              f"use more training vectors or fewer bits")

    def fit(self, quantizer: Quantizer, data: torch.Tensor, ocfg: Mapping[str, Any], device: torch.device,
            seed: int, progress: bool, batches: Batches | None, curve: Curve | None = None) -> dict[str, float]:
        if codebook_free(quantizer):
            raise ConfigError(f"optimizer=kmeans fits codebooks; quantizer={quantizer.name} has none "
                              f"(train it with a gradient optimizer, e.g. optimizer=ste)")
        if batches is not None:
            raise ConfigError("optimizer=kmeans fits a fixed training set; it cannot draw fresh batches")
        return fit_kmeans(quantizer, data, ocfg, device, seed, progress)

    def estimator(self, quantizer: Quantizer, ocfg: Mapping[str, Any], generator: torch.Generator | None) -> EMA:
        return EMA(quantizer, ocfg, generator)

