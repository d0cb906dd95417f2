"""A torch-engine and a numba-engine AVQ on the same codebooks, for tests that compare the
compiled search with the torch reference (test_avq_numba.py, test_quantizer_survivors.py)."""

from __future__ import annotations

import torch

from vqbench.quantizers import AVQ


def engine_pair(dim: int, M: int, bits: int, W: int, seed: int, smallest_scale: float = 0.3) -> tuple[AVQ, AVQ]:
    """(torch engine, numba engine) sharing random codebooks whose scale decays linearly from 1
    (codebook 0) to ``smallest_scale`` (codebook M-1)."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(1.0, smallest_scale, M).view(M, 1, 1)
    codebooks = torch.randn(M, 1 << bits, dim, generator=g) * scale
    pair = []
    for engine in ("torch", "numba"):
        q = AVQ(dim, M, bits, beam_width=W, engine=engine)
        q.codebooks.data = codebooks.clone()
        pair.append(q)
    return pair[0], pair[1]
