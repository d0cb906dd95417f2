"""The ``ste`` estimator: straight-through estimator (Bengio et al. 2013) with the VQ-VAE's
codebook and commitment losses (van den Oord et al., "Neural Discrete Representation
Learning", NeurIPS 2017).

x + sg(x_hat - x) forward, identity backward, plus codebook loss ||sg[x] - x_hat||^2 and
commitment loss beta * ||x - sg[x_hat]||^2. On raw vectors the loss is
||x - x_st||^2 + ||sg[x] - x_hat||^2 + beta ||x - sg[x_hat]||^2; in a model the next layer sees
x_st and the codebook + commitment terms (means over elements) are the auxiliary loss.

Against vector-quantize-pytorch's ``VectorQuantize(learnable_codebook=True, ema_update=False)``:
the same terms; its default trains the codebooks by EMA instead (our ``ema`` estimator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..common.checks import check_range
from .estimator import Estimate, Estimator
from .gradient import GradientConfig


@dataclass
class STEConfig(GradientConfig):
    """Straight-through estimator with codebook loss + beta * commitment loss (Adam)."""

    name: str = "ste"
    beta: float = 0.25  # commitment loss weight


def ste(x: torch.Tensor, x_hat: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight-through output and the codebook + commitment loss (mean over vectors of sums over D)."""
    codebook_loss = (x.detach() - x_hat).pow(2).sum(1).mean()
    commitment_loss = (x - x_hat.detach()).pow(2).sum(1).mean()
    return x + (x_hat - x).detach(), codebook_loss + beta * commitment_loss


def check_beta(settings: Mapping[str, Any], prefix: str) -> None:
    """ConfigError unless settings['beta'] >= 0 (named prefix + 'beta')."""
    check_range(f"{prefix}beta", settings["beta"], 0)


class STE(Estimator):
    """Straight-through, codebook + beta * commitment loss per element."""

    name = "ste"
    Config = STEConfig
    summary = "x + sg(x^ - x): identity gradient; aux codebook + beta*commitment (van den Oord et al. 2017)"

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        self.beta = float(settings["beta"])

    @classmethod
    def check(cls, settings, prefix=""):
        """beta >= 0."""
        check_beta(settings, prefix)

    def forward(self, x, x_hat, codes):
        """Straight-through output and codebook + beta * commitment loss per element."""
        out, loss = ste(x, x_hat, self.beta)  # sums over the D elements of each vector
        return Estimate(out, codes, loss / x.shape[1])

    def raw_loss(self, x, x_hat, codes):
        """||x - x_st||^2 + codebook + beta * commitment loss (sums over D, means over vectors), the errors, the codes."""
        x_st, vq_loss = ste(x, x_hat, self.beta)
        return (x - x_st).pow(2).sum(1).mean() + vq_loss, (x - x_hat.detach()).pow(2).sum(1), codes
