"""The ``kmeans`` optimizer: each quantizer's own classical fit (``Quantizer.fit_kmeans``, built
from the primitives in quantizers/kmeans.py) on the training vectors, on the CPU."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..quantizers import Quantizer


def fit_kmeans(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    device: torch.device,
    seed: int,
    progress: bool,
) -> dict[str, float]:
    """The quantizer's own classical fit (``Quantizer.fit_kmeans``) on `data` [N, D]."""
    x = data.detach().cpu().numpy().astype(np.float32, copy=False)
    quantizer.to("cpu")
    stats = quantizer.fit_kmeans(x, int(ocfg["lloyd_iterations"]), int(ocfg["alternations"]), seed, progress)
    quantizer.to(device)
    return stats
