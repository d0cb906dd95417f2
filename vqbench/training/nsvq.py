"""The ``nsvq`` optimizer: noise substitution (Vali & Bäckström, IEEE Access 2022), trained with Adam.

x_tilde = x + ||x - x_hat|| * v / ||v||, v ~ N(0, I) drawn fresh for every vector. The noise has
exactly the quantization error's norm, so gradients reach the codebooks through ||x - x_hat||.
On raw vectors the loss ||x - x_tilde||^2 equals ||x - x_hat||^2 exactly in float32 (``nsvq_loss``);
in a VQ-VAE the decoder sees x_tilde and there is no auxiliary loss.

``optimizer.noise_scope``: ``vector`` (default) draws one noise vector per latent scaled by the
whole error; ``part`` draws one per part the quantizer codes independently (PVQ's M subspaces,
each VQ'd on its own), scaled by that part's own error, i.e. NSVQ applied to each of PVQ's
vector quantizers. Both give x_tilde the error's norm overall; ``part`` keeps each subspace's
noise at that subspace's error. For VQ, RVQ and AVQ (one part) the two are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..common.options import NoiseScope
from ..quantizers import Quantizer
from .gradient import GradientConfig, GradientOptimizer
from .spec import Bottleneck

_EPS = 1e-12


@dataclass
class NSVQConfig(GradientConfig):
    """Noise substitution, x~ = x + ||x - x^|| v/||v||, trained with Adam."""

    name: str = "nsvq"
    noise_scope: NoiseScope = NoiseScope.vector  # part: one noise draw per independently coded part (PVQ)


def nsvq(x: torch.Tensor, x_hat: torch.Tensor, generator: torch.Generator | None = None, parts: int = 1) -> torch.Tensor:
    """Noise-substituted quantizer output for x, x_hat of shape [N, D]; ``parts`` > 1: the noise
    of each of `parts` equal slices of the D dimensions has that slice's error norm."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    n, d = x.shape
    error_norm = (x - x_hat).view(n, parts, d // parts).norm(dim=2, keepdim=True)
    noise = noise.view(n, parts, d // parts)
    noise_norm = noise.norm(dim=2, keepdim=True)
    return x + ((error_norm / (noise_norm + _EPS)) * noise).view(n, d)


def nsvq_loss(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The NSVQ loss on the vectors themselves, ``mean ||x - nsvq(x, x_hat)||^2``, and the
    detached per-vector errors ||x - x_hat||^2.

    x - x_tilde = (e / (||v|| + eps)) v with e = ||x - x_hat||, so ||x - x_tilde||^2 =
    e^2 (||v|| / (||v|| + eps))^2. In float32 that factor is exactly 1 (||v|| is about sqrt(D),
    eps = 1e-12; it differs from 1 only for ||v|| < ~1e-5), so loss and gradient are those of
    the squared error itself and drawing v would only advance a generator. Where something
    sits between x_tilde and the loss (an encoder/decoder, VQ-VAE) use :func:`nsvq`.
    """
    err2 = (x - x_hat).pow(2).sum(1)
    return err2.mean(), err2.detach()


class NSVQBottleneck(Bottleneck):
    """The decoder sees x + ||x - x_hat|| v/||v||; no auxiliary loss."""

    def __init__(self, quantizer: Quantizer, generator: torch.Generator, parts: int = 1):
        super().__init__(quantizer)
        self.generator = generator
        self.parts = parts

    def forward(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nsvq(z, self.quantizer.decode(codes), self.generator, self.parts), z.new_zeros(())


class NSVQ(GradientOptimizer):
    name = "nsvq"
    Config = NSVQConfig

    def raw_loss(self, x: torch.Tensor, x_hat: torch.Tensor, ocfg: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return nsvq_loss(x, x_hat)  # = ||x - x_tilde||^2 exactly in float32: no noise to draw

    def bottleneck(self, quantizer: Quantizer, ocfg: Mapping[str, Any], generator: torch.Generator) -> Bottleneck:
        parts = quantizer.independent_parts if ocfg["noise_scope"] == NoiseScope.part.value else 1
        return NSVQBottleneck(quantizer, generator, parts)

    @property
    def series_suffix(self) -> str:
        return ""  # the paper's optimizer: its runs carry the quantizer's bare name
