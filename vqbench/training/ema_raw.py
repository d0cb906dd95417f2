"""EMA codebook training on raw vectors: the codebooks get no gradient; each training batch
moves them by exponential moving averages of the vectors assigned to each codeword (the
counts and sums of :class:`vqbench.training.ema.EMACodebooks`, van den Oord et al. 2017,
appendix A.1; with decay 0 a codeword becomes the mean of its assigned targets). What passes
on to a following layer is the straight-through output x + sg(x_hat - x), with the commitment
loss beta * mean ||x - sg(x_hat)||^2 pulling x towards its codeword.

The target each codebook averages is the quantizer's own (``Quantizer.ema_targets``): the
sub-vector for VQ/PVQ, the residual of the earlier stages for RVQ, x minus the other
codebooks' codewords for AVQ.
"""

from __future__ import annotations

import torch

from ..quantizers import Quantizer
from .ema import EMACodebooks


def ema_straight_through(x: torch.Tensor, x_hat: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + sg(x_hat - x), beta * mean over vectors of ||x - sg(x_hat)||^2) for x, x_hat [N, D];
    no gradient reaches x_hat."""
    x_hat = x_hat.detach()
    return x + (x_hat - x).detach(), beta * (x - x_hat).pow(2).sum(-1).mean()


class RawEMA(EMACodebooks):
    """EMA state for `quantizer`'s codebooks; ``step(x)`` encodes a batch of raw vectors x [N, D],
    updates the codebooks from it and returns the codes [N, M]."""

    def __init__(self, quantizer: Quantizer, decay: float = 0.99, eps: float = 1e-5):
        super().__init__(quantizer, decay=decay, eps=eps)

    @torch.no_grad()
    def step(self, x: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """One EMA update from x [N, D] and its codes (encoded here if not given)."""
        q = self.quantizer[0]
        if codes is None:
            codes = q.encode(x)
        self.update(x, codes)
        return codes
