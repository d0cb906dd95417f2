"""Codebook initialisation shared by the gradient optimizers and the VQ-VAE (``optimizer.init``).

* ``random``: codewords drawn from N(0, (0.01 sigma)^2), sigma the std of the vectors being
  quantized (raw data, or the VQ-VAE's latents), so the start is small in the data's own units.
  The first assignments then follow direction, not norm, and every codeword gets used (as in
  the NSVQ reference code).
* ``uniform``: codewords drawn from U(-1/K, 1/K) in absolute units, whatever the data's scale:
  the start of the NSVQ authors' code (their ``initialization='uniform'``).
* ``data``: VQ/PVQ codewords are random training (sub-)vectors; RVQ/AVQ codebook m holds random
  residuals left after greedy encoding with codebooks 0..m-1.
"""

from __future__ import annotations

import torch

from ..common.options import Init
from ..quantizers import Quantizer

RANDOM_SCALE = 0.01  # std of the random start, relative to the data's std


@torch.no_grad()
def initialize_codebooks(quantizer: Quantizer, data: torch.Tensor, how: str, generator: torch.Generator) -> None:
    """Set the codebooks of `quantizer` from `data` [N, D] as ``optimizer.init`` = `how` says."""
    if how == Init.data.value:
        init_from_data(quantizer, data, generator)
    elif how == Init.random.value:
        sigma = data.float().std().clamp_min(1e-12).item()
        noise = torch.randn(quantizer.codebooks.shape, generator=generator) * (RANDOM_SCALE * sigma)
        quantizer.codebooks.data = noise.to(quantizer.codebooks)
    elif how == Init.uniform.value:
        bound = 1.0 / quantizer.codebooks.shape[1]
        start = (torch.rand(quantizer.codebooks.shape, generator=generator) * 2.0 - 1.0) * bound
        quantizer.codebooks.data = start.to(quantizer.codebooks)
    else:
        raise ValueError(f"optimizer.init must be one of {[i.value for i in Init]}, got {how!r}")


def init_from_data(quantizer: Quantizer, data: torch.Tensor, generator: torch.Generator) -> None:
    """The quantizer's own data initialisation (``Quantizer.init_from_data``)."""
    quantizer.init_from_data(data, generator)
