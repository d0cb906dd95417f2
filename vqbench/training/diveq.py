"""The ``diveq`` and ``sf_diveq`` estimators (Vali, Bäckström & Solin, "DiVeQ: Differentiable
Vector Quantization Using the Reparameterization Trick", arXiv 2509.26469, ICLR 2026; the
authors' code: github.com/AaltoML/DiVeQ, PyPI package ``diveq``).

DiVeQ: quantization as adding an error vector to x whose length is the true quantization error
and whose direction points at the chosen codeword, perturbed by a little Gaussian noise:

    x_out = x + ||x_hat - x|| * sg[ v_d / ||v_d|| ],   v_d = (x_hat - x) + v,   v ~ N(0, noise_std^2 I).

The forward value is x_hat up to the small noise (exactly x_hat when noise_std = 0). Gradients:
with d = (x_hat - x)/||x_hat - x|| and u the detached direction, dL/dx = g - (u.g) d and
dL/dx_hat = (u.g) d. No auxiliary loss.

**Noise convention.** The authors' code draws ``Normal(0, noise_var)`` with ``noise_var = 1e-3``
(their ``--variance``): torch's Normal takes a *standard deviation*, so their noise std is 1e-3.
``noise_std`` is that number and its default is theirs (1e-3). vqbench before this version took
a variance ``sigma2 = 1e-3`` (std sqrt(1e-3) = 0.0316, 31.6 times theirs); the layers still
accept ``sigma2=`` (a variance: noise_std = sqrt(sigma2)) for that convention.

SF-DiVeQ (space-filling DiVeQ, the authors' ``SFDIVEQ``): the codewords of a codebook form a
chain c_0, ..., c_{K-1}; each training batch draws one dither lambda_j ~ U(0, 1) per segment
j (K - 1 of them), quantizes each vector to the nearest dithered point
p_j = (1 - lambda_j) c_j + lambda_j c_{j+1}, and passes

    x_out = x + (1 - lambda_j) ||c_j - x|| sg[u_1] + lambda_j ||c_{j+1} - x|| sg[u_2],

u_i the noisy unit directions to the two ends (as DiVeQ's). Its value is about p_j, and both
ends of the segment get gradients, so every codeword keeps being pulled towards the data (the
authors use no codeword replacement with it). In ``eval()`` the layer returns the nearest
codeword (the authors' ``inference``; their ``dithered_inference`` projection onto segments is
not offered). The codes reported in training are the nearer end of the chosen segment.

Residual SF-DiVeQ (the authors' ``ResidualSFDIVEQ``), used for RVQ: stage by stage, each stage
draws its own dithers, picks the dithered point of its chain nearest to the residual of the
stages before, and the sum s of the picked points (differentiable in the codebooks through the
interpolation) goes through DiVeQ: x_out = x + ||s - x|| sg[(s - x + v)/||.||].

Differences from the authors' code: we clamp norms at 1e-12 instead of adding eps (SF-DiVeQ: they
add none); SF-DiVeQ runs per codebook on VQ and PVQ (each subspace its own chain) and residually
on RVQ; AVQ (beam search, no greedy stage order) refuses it, as the authors have no additive
variant. Their warm-up is not here: for the first ``skip_iters`` (1000) steps their modules
either pass x through unquantized (``SFDIVEQ``) or train by residual DiVeQ with their own
codeword replacement (``ResidualSFDIVEQ``), then set each codebook to means of consecutive runs
of the last ``avg_iters`` (50) batches' latents (residuals). vqbench starts SF-DiVeQ at step 0
from the codebook start the run chose (``optimizer.init``, ``init=`` of a layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.checks import check_range
from .estimator import Estimate, Estimator
from .gradient import GradientConfig

_EPS = 1e-12
DEFAULT_NOISE_STD = 1e-3  # the authors' default (their noise_var, used as a standard deviation)


@dataclass
class DiVeQConfig(GradientConfig):
    """DiVeQ: the error's length along a noisy direction to the codeword (Adam)."""

    name: str = "diveq"
    noise_std: float = DEFAULT_NOISE_STD  # std of the direction noise (the authors' noise_var, a std)


@dataclass
class SFDiVeQConfig(GradientConfig):
    """SF-DiVeQ: DiVeQ to a dithered point on the segment between neighbouring codewords (Adam)."""

    name: str = "sf_diveq"
    noise_std: float = DEFAULT_NOISE_STD


def _noisy_unit(direction: torch.Tensor, noise_std: float, generator: torch.Generator | None) -> torch.Tensor:
    direction = direction.detach()
    if noise_std > 0:
        noise = torch.randn(direction.shape, generator=generator, device=direction.device, dtype=direction.dtype)
        direction = direction + noise * noise_std
    return direction / direction.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def diveq(x: torch.Tensor, x_hat: torch.Tensor, noise_std: float,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """DiVeQ output for x, x_hat of shape [N, D]; `generator` draws the noise v ~ N(0, noise_std^2 I)."""
    if not noise_std >= 0:
        raise ValueError(f"diveq: noise_std must be >= 0, got {noise_std}")
    error = x_hat - x
    return x + error.norm(dim=-1, keepdim=True) * _noisy_unit(error, noise_std, generator)


def sf_diveq_select(target: torch.Tensor, codebook: torch.Tensor, noise_std: float,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SF-DiVeQ for targets [N, d] on one codebook [K, d] (K >= 2): (x_out [N, d], the nearer
    end of each chosen segment [N])."""
    k = codebook.shape[0]
    dither = torch.rand((k - 1, 1), generator=generator, device=target.device, dtype=target.dtype)
    ends0, ends1 = codebook[:-1], codebook[1:]
    with torch.no_grad():
        points = (1 - dither) * ends0 + dither * ends1
        dist = points.pow(2).sum(-1).unsqueeze(0) - 2.0 * target.detach() @ points.t()
        segment = dist.argmin(dim=1)
    first, second, s = codebook[segment], codebook[segment + 1], dither[segment]
    e1, e2 = first - target, second - target
    out = (target + e1.norm(dim=-1, keepdim=True) * ((1 - s) * _noisy_unit(e1, noise_std, generator))
           + e2.norm(dim=-1, keepdim=True) * (s * _noisy_unit(e2, noise_std, generator)))
    return out, torch.where(s.squeeze(-1) < 0.5, segment, segment + 1)


def residual_sf_diveq(x: torch.Tensor, codebooks: torch.Tensor, noise_std: float,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual SF-DiVeQ for x [N, D] on stage codebooks [M, K, D] (K >= 2): (x_out [N, D], the
    nearer end of each stage's chosen segment [N, M]). The stages run in order (each needs the
    residual of the ones before); everything within a stage is one matrix operation."""
    m, k = codebooks.shape[0], codebooks.shape[1]
    residual, total, codes = x.detach(), x.new_zeros(()), []
    for i in range(m):
        dither = torch.rand((k - 1, 1), generator=generator, device=x.device, dtype=x.dtype)
        points = (1 - dither) * codebooks[i, :-1] + dither * codebooks[i, 1:]  # differentiable in the codebook
        with torch.no_grad():
            segment = (points.pow(2).sum(-1).unsqueeze(0) - 2.0 * residual @ points.t()).argmin(dim=1)
        picked = points[segment]
        total = total + picked
        residual = residual - picked.detach()
        codes.append(torch.where(dither[segment, 0] < 0.5, segment, segment + 1))
    return diveq(x, total, noise_std, generator), torch.stack(codes, dim=1)


def _check_noise(settings, prefix: str) -> None:
    check_range(f"{prefix}noise_std", settings["noise_std"], 0)


class DiVeQ(Estimator):
    """x + ||x_hat - x|| sg[(x_hat - x + v)/||.||], v ~ N(0, noise_std^2 I); no aux loss."""

    name = "diveq"
    Config = DiVeQConfig
    summary = ("x + ||x^ - x|| sg[v_d/||v_d||], v_d = x^ - x + N(0, noise_std^2 I) (Vali, Bäckström & Solin 2025; "
               "noise_std = the authors' noise_var)")

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        self.noise_std = float(settings["noise_std"])

    @classmethod
    def check(cls, settings, prefix=""):
        """noise_std >= 0."""
        _check_noise(settings, prefix)

    def forward(self, x, x_hat, codes):
        """DiVeQ's output; zero aux loss."""
        return Estimate(diveq(x, x_hat, self.noise_std, self.generator), codes, x.new_zeros(()))


class SFDiVeQ(Estimator):
    """Space-filling DiVeQ on VQ and PVQ (one chain of codewords per codebook); no aux loss."""

    name = "sf_diveq"
    Config = SFDiVeQConfig
    summary = ("DiVeQ to a dithered point between neighbouring codewords (SF-DiVeQ; VQ, PVQ, and RVQ stage "
               "by stage)")

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        shared_space = quantizer.num_codebooks > 1 and quantizer.codeword_dim == quantizer.dim
        if shared_space and not quantizer.greedy_stages:
            raise ValueError(f"sf_diveq runs on VQ and PVQ (a chain per subspace) and RVQ (residual, stage by "
                             f"stage), not on {quantizer.name.upper()}, whose codes do not come stage by stage")
        if quantizer.codebook_size < 2:
            raise ValueError("sf_diveq needs at least 2 codewords per codebook")
        self.residual = shared_space
        self.noise_std = float(settings["noise_std"])

    @classmethod
    def check(cls, settings, prefix=""):
        """noise_std >= 0."""
        _check_noise(settings, prefix)

    def forward(self, x, x_hat, codes):
        """SF-DiVeQ's output per codebook (subspace), its codes; zero aux loss."""
        q = self.quantizer
        n, m, d = x.shape[0], q.num_codebooks, q.codeword_dim
        dtype = torch.promote_types(x.dtype, q.codebooks.dtype)  # float16 input, float32 codebooks: float32
        if self.residual:
            out, codes = residual_sf_diveq(x.to(dtype), q.codebooks.to(dtype), self.noise_std, self.generator)
            return Estimate(out.to(x.dtype), codes, x.new_zeros(()))
        targets = x.reshape(n, m, d).to(dtype)
        codes = codes.clone()
        outs = []
        for i in range(m):
            out, codes[:, i] = sf_diveq_select(targets[:, i], q.codebooks[i].to(dtype), self.noise_std, self.generator)
            outs.append(out)
        return Estimate(torch.cat(outs, dim=1).to(x.dtype), codes, x.new_zeros(()))
