"""Differentiable stand-ins for the hard quantizer output x_hat.

* NSVQ (Vali & Bäckström, IEEE Access 2022): x_tilde = x + ||x - x_hat|| * v / ||v||,
  v ~ N(0, I) drawn fresh for every vector. The noise has exactly the quantization
  error's norm, so gradients reach the codebooks through ||x - x_hat||.
* STE (Bengio et al. 2013; van den Oord et al. 2017): x + sg(x_hat - x) forward,
  identity backward, plus codebook loss ||sg[x] - x_hat||^2 and commitment loss
  beta * ||x - sg[x_hat]||^2.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def nsvq(x: torch.Tensor, x_hat: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise-substituted quantizer output for x, x_hat of shape [N, D]."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    error_norm = (x - x_hat).norm(dim=1, keepdim=True)
    noise_norm = noise.norm(dim=1, keepdim=True)
    return x + (error_norm / (noise_norm + _EPS)) * noise


def nsvq_loss(
    x: torch.Tensor, x_hat: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean ||x - nsvq(x, x_hat)||^2`` and the detached per-vector errors ||x - x_hat||^2.

    For the loss on x itself x_tilde need not be formed: x - x_tilde = (e / (||v|| + eps)) v
    with e = ||x - x_hat||, so ||x - x_tilde||^2 = e^2 ||v||^2 / (||v|| + eps)^2. The noise
    is drawn exactly as in :func:`nsvq` (same generator stream); value and gradient equal
    those through x_tilde up to float rounding, at a fraction of the elementwise work.
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    err2 = (x - x_hat).pow(2).sum(1)
    noise_norm = noise.norm(dim=1)
    scale = (noise_norm / (noise_norm + _EPS)).pow(2)
    return (err2 * scale).mean(), err2.detach()


def ste(x: torch.Tensor, x_hat: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight-through output and the codebook + commitment loss (mean over vectors)."""
    codebook_loss = (x.detach() - x_hat).pow(2).sum(1).mean()
    commitment_loss = (x - x_hat.detach()).pow(2).sum(1).mean()
    return x + (x_hat - x).detach(), codebook_loss + beta * commitment_loss
