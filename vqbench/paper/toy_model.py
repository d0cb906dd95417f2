"""The correlated toy source that reproduces the paper's Fig. 2a (fit: scripts/fit_paper_toy.py).

x = z A with z ~ N(0, I_rank) and A a fixed rank x dim matrix of i.i.d. N(0, 1) entries (drawn
from `seed`), scaled so that the variance summed over dims equals dim (unit variance per dim on
average). Fig. 2a's curves are matched by rank 16 in 64 dims (results/paper/toy_model_fit.md):
AVQ falls by sqrt(2) per 4 bits from 16 to 40 bits (16 active dims), and PVQ follows the bound of
quantizing each 16-dim subspace alone. The Toeplitz rho^|i-j| model cannot: in 64 dims its
R-D bound falls at most 4.3x from 12 to 40 bits (rho = 0.999), the paper's AVQ 9.8x.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.toy import mixing_matrix

FIG2A_DIM = 64
FIG2A_RANK = 16


def lowrank_covariance(dim: int, rank: int, seed: int = 0) -> np.ndarray:
    a = mixing_matrix(dim, rank, seed)
    return a.T @ a


def sample_lowrank(n: int, dim: int, rank: int, seed: int = 0, sample_seed: int = 1) -> torch.Tensor:
    """n vectors [n, dim] float32 of the source (A from `seed`, z from `sample_seed`)."""
    z = np.random.default_rng(sample_seed).standard_normal((n, rank))
    return torch.from_numpy((z @ mixing_matrix(dim, rank, seed)).astype(np.float32))
