"""EMA codebook updates (the VQ-VAE's "k-means"), van den Oord et al. (2017), appendix A.1.

For every codeword k of codebook m the update keeps exponential moving averages of how many
vectors chose it (N) and of the sum of their targets (S):

    N <- decay * N + (1 - decay) * n_batch,     S <- decay * S + (1 - decay) * sum_batch,
    c <- S / N~,   N~ = (N + eps) / (sum_k N + K eps) * sum_k N   (Laplace smoothing).

The *target* of codebook m is what that codebook alone should reproduce, given the codes
(``Quantizer.ema_targets``):

* VQ, PVQ: the vector's m-th subspace;
* RVQ:     the residual left by stages 0..m-1 (x minus their selected codewords);
* AVQ:     x minus the codewords selected from all the other codebooks.

All codebooks are updated at once from one [N, M, d] target tensor with a single
``index_add_`` (codeword ids offset by m*K), so there is no loop over codewords or codebooks.
Both averages start from the current codebooks with a pseudo-count of 1 per codeword.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quantizers import Quantizer


def ema_targets(quantizer: Quantizer, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """What each codebook should reproduce for each vector: [N, M, codeword_dim] (the quantizer's own)."""
    return quantizer.ema_targets(x, codes)


class EMACodebooks(nn.Module):
    """Moving-average state for a quantizer's codebooks; ``update`` rewrites them in place."""

    def __init__(self, quantizer: Quantizer, decay: float, eps: float = 1e-5):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"optimizer.ema_decay must be in [0, 1), got {decay}")
        if eps <= 0:
            raise ValueError(f"EMA Laplace smoothing eps must be > 0, got {eps}")
        self.quantizer = [quantizer]  # a list: not registered as a submodule (no duplicate state)
        self.decay = decay
        self.eps = eps
        books = quantizer.codebooks.detach()
        self.register_buffer("counts", torch.ones(books.shape[:2], dtype=books.dtype, device=books.device))
        self.register_buffer("sums", books.clone())

    @torch.no_grad()
    def update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step from vectors x [N, D] and their codes [N, M]."""
        q = self.quantizer[0]
        m, k, d = q.codebooks.shape
        targets = ema_targets(q, x.detach().to(self.sums.dtype), codes).reshape(-1, d)
        flat = (codes + torch.arange(m, device=codes.device) * k).reshape(-1)
        batch_counts = torch.bincount(flat, minlength=m * k).to(self.counts.dtype).view(m, k)
        batch_sums = torch.zeros(m * k, d, dtype=self.sums.dtype, device=self.sums.device)
        batch_sums.index_add_(0, flat, targets)
        self.counts.mul_(self.decay).add_(batch_counts, alpha=1.0 - self.decay)
        self.sums.mul_(self.decay).add_(batch_sums.view(m, k, d), alpha=1.0 - self.decay)
        total = self.counts.sum(dim=1, keepdim=True)
        smoothed = (self.counts + self.eps) / (total + k * self.eps) * total
        q.codebooks.data.copy_(self.sums / smoothed.unsqueeze(-1))

    @torch.no_grad()
    def reset(self, mask: torch.Tensor) -> None:
        """Restart the averages of codewords ``mask`` [M, K] (e.g. after dead-code replacement)
        from their current values with a pseudo-count of 1."""
        books = self.quantizer[0].codebooks.detach()
        self.counts[mask] = 1.0
        self.sums[mask] = books[mask]
