"""Codebook initialisation shared by the gradient optimizers and the VQ-VAE (``optimizer.init``).

* ``random``: codewords drawn from N(0, (0.01 sigma)^2), sigma the std of the vectors being
  quantized (raw data, or the VQ-VAE's latents), so the start is small in the data's own units.
  The first assignments then follow direction, not norm, and every codeword gets used (as in
  the NSVQ reference code).
* ``data``: VQ/PVQ codewords are random training (sub-)vectors; RVQ/AVQ codebook m holds random
  residuals left after greedy encoding with codebooks 0..m-1.
"""

from __future__ import annotations

import torch

from ..quantizers import PVQ, Quantizer
from ..quantizers.base import nearest_codeword

RANDOM_SCALE = 0.01  # std of the random start, relative to the data's std
INITS = ("random", "data")


@torch.no_grad()
def initialize_codebooks(quantizer: Quantizer, data: torch.Tensor, how: str, generator: torch.Generator) -> None:
    """Set the codebooks of `quantizer` from `data` [N, D] as ``optimizer.init`` = `how` says."""
    if how == "data":
        init_from_data(quantizer, data, generator)
    elif how == "random":
        sigma = data.float().std().clamp_min(1e-12).item()
        noise = torch.randn(quantizer.codebooks.shape, generator=generator) * (RANDOM_SCALE * sigma)
        quantizer.codebooks.data = noise.to(quantizer.codebooks)
    else:
        raise ValueError(f"optimizer.init must be one of {INITS}, got {how!r}")


@torch.no_grad()
def init_from_data(quantizer: Quantizer, data: torch.Tensor, generator: torch.Generator) -> None:
    M, K, d = quantizer.codebooks.shape
    n = data.shape[0]
    pick = torch.randint(n, (min(n, 64 * K),), generator=generator)
    sample = data[pick].to(quantizer.codebooks)
    if isinstance(quantizer, PVQ) or M == 1:
        sub = sample.reshape(sample.shape[0], M, d)
        rows = torch.randint(sample.shape[0], (M, K), generator=generator).to(sample.device)
        quantizer.codebooks.data = sub[rows, torch.arange(M, device=sample.device).unsqueeze(1)]
        return
    residual = sample.clone()
    for m in range(M):
        rows = torch.randint(residual.shape[0], (K,), generator=generator).to(residual.device)
        codebook = residual[rows].clone()
        quantizer.codebooks.data[m] = codebook
        residual -= codebook[nearest_codeword(residual, codebook, codebook.pow(2).sum(1))]
