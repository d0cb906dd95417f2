"""The ``ste`` optimizer: straight-through estimator (Bengio et al. 2013; van den Oord et al. 2017)
with Adam.

x + sg(x_hat - x) forward, identity backward, plus codebook loss ||sg[x] - x_hat||^2 and
commitment loss beta * ||x - sg[x_hat]||^2. On raw vectors the loss is
||x - x_st||^2 + ||sg[x] - x_hat||^2 + beta ||x - sg[x_hat]||^2; in a VQ-VAE the decoder sees
x_st and the codebook + commitment terms (means over latent elements) are the auxiliary loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..common.checks import check_range
from ..quantizers import Quantizer
from .gradient import GradientConfig, GradientOptimizer
from .spec import Bottleneck


@dataclass
class STEConfig(GradientConfig):
    """Straight-through estimator with codebook loss + beta * commitment loss (Adam)."""

    name: str = "ste"
    beta: float = 0.25  # commitment loss weight


def ste(x: torch.Tensor, x_hat: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight-through output and the codebook + commitment loss (mean over vectors)."""
    codebook_loss = (x.detach() - x_hat).pow(2).sum(1).mean()
    commitment_loss = (x - x_hat.detach()).pow(2).sum(1).mean()
    return x + (x_hat - x).detach(), codebook_loss + beta * commitment_loss


class STEBottleneck(Bottleneck):
    """Straight-through to the encoder, codebook + beta * commitment loss per latent element."""

    def __init__(self, quantizer: Quantizer, beta: float):
        super().__init__(quantizer)
        self.beta = beta

    def forward(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zq, loss = ste(z, self.quantizer.decode(codes), self.beta)  # sums over the C latent dims
        return zq, loss / z.shape[1]


class STE(GradientOptimizer):
    name = "ste"
    Config = STEConfig

    def check_config(self, ocfg: Mapping[str, Any]) -> None:
        super().check_config(ocfg)
        check_range("optimizer.beta", ocfg["beta"], 0)

    def raw_loss(self, x: torch.Tensor, x_hat: torch.Tensor, ocfg: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        x_st, vq_loss = ste(x, x_hat, float(ocfg["beta"]))
        return (x - x_st).pow(2).sum(1).mean() + vq_loss, (x - x_hat.detach()).pow(2).sum(1)

    def bottleneck(self, quantizer: Quantizer, ocfg: Mapping[str, Any], generator: torch.Generator) -> Bottleneck:
        return STEBottleneck(quantizer, float(ocfg["beta"]))
