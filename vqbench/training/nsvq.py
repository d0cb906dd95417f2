"""The ``nsvq`` estimator: noise substitution (Vali & Bäckström, "NSVQ: Noise Substitution in
Vector Quantization for Machine Learning", IEEE Access 2022), the paper's own optimizer.

x_tilde = x + ||x - x_hat|| * v / ||v||, v ~ N(0, I) drawn fresh for every vector. The noise has
exactly the quantization error's norm, so gradients reach the codebooks through ||x - x_hat||;
no auxiliary loss. On raw vectors the loss ||x - x_tilde||^2 equals ||x - x_hat||^2 exactly in
float32 (``nsvq_loss``), so no noise is drawn there.

``noise_scope`` (``optimizer.noise_scope``): ``vector`` (default) draws one noise vector per
latent scaled by the whole error; ``part`` draws one per part the quantizer codes independently
(PVQ's M subspaces, each vector-quantized on its own), scaled by that part's own error, i.e.
NSVQ applied to each of PVQ's vector quantizers. Both give x_tilde the error's norm overall;
``part`` keeps each subspace's noise at that subspace's error. For VQ, RVQ and AVQ (one part)
the two are the same, drawn from the same random stream.

Against the authors' code (github.com/MHVali/Noise-Substitution-in-Vector-Quantization): the
same formula (their eps 1e-12 in the same place); their codebook replacement is
vqbench.training.replacement's (same window and threshold rule, set by ``optimizer.replacement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..common.options import NoiseScope
from .estimator import Estimate, Estimator
from .gradient import GradientConfig

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


class NSVQ(Estimator):
    """x + ||x - x_hat|| v/||v||, v ~ N(0, I); no auxiliary loss."""

    name = "nsvq"
    Config = NSVQConfig
    summary = "x + ||x - x^|| v/||v||, v ~ N(0, I) (noise substitution; Vali & Bäckström 2022)"
    series_suffix: ClassVar[str] = ""  # the paper's optimizer: figures name its runs by the quantizer alone

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        self.noise_scope = _scope(settings)
        self.parts = quantizer.independent_parts if self.noise_scope == NoiseScope.part.value else 1

    @classmethod
    def check(cls, settings, prefix=""):
        """noise_scope is vector or part."""
        scope = _scope(settings)
        if scope not in [s.value for s in NoiseScope]:
            raise ValueError(f"{prefix}noise_scope must be one of {[s.value for s in NoiseScope]}, got {scope!r}")

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, codes: torch.Tensor) -> Estimate:
        """The noise-substituted output; zero aux loss."""
        return Estimate(nsvq(x, x_hat, self.generator, self.parts), codes, x.new_zeros(()))

    def raw_loss(self, x, x_hat, codes):
        """||x - x_hat||^2 (= the NSVQ loss exactly in float32), the errors, the codes."""
        loss, err2 = nsvq_loss(x, x_hat)  # = ||x - x_tilde||^2 exactly in float32: no noise to draw
        return loss, err2, codes


def _scope(settings) -> str:
    """settings["noise_scope"] as its name (a NoiseScope from the schema, or a plain string)."""
    value = settings["noise_scope"]
    return str(getattr(value, "value", value))
