"""The ``kmeans`` optimizer: each quantizer's own classical fit (``Quantizer.fit_kmeans``, built
from the primitives in quantizers/kmeans.py) on the training vectors, on the CPU."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..quantizers import Quantizer

log = logging.getLogger(__name__)


def fit_kmeans(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    device: torch.device,
    seed: int,
    progress: bool,
) -> dict[str, float]:
    """The quantizer's own classical fit (``Quantizer.fit_kmeans``) on `data` [N, D]."""
    if torch.device(device).type != "cpu":  # what the quantizer's classical fit runs (faiss k-means, ...)
        log.warning("optimizer=kmeans runs on the CPU (%s), not on device=%s; the codebooks move to %s afterwards",
                    quantizer.classical_fit, device, device)
    x = data.detach().cpu().numpy().astype(np.float32, copy=False)
    quantizer.to("cpu")
    stats = quantizer.fit_kmeans(x, int(ocfg["lloyd_iterations"]), int(ocfg["alternations"]), seed, progress)
    quantizer.to(device)
    return stats
