"""Data-dependent codebook initialisation shared by the gradient and k-means optimizers.

VQ/PVQ: codewords are random training (sub-)vectors. RVQ/AVQ: codebook m holds random
residuals left after greedy encoding with codebooks 0..m-1 (residual k-means++-free seeding).
"""

from __future__ import annotations

import torch

from ..quantizers import PVQ, Quantizer
from ..quantizers.base import nearest_codeword


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
