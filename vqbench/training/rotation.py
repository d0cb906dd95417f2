"""The ``rotation`` estimator: the rotation trick (Fifty et al., "Restructuring Vector Quantization
with the Rotation Trick", ICLR 2025, arXiv 2410.06424). Pass x_hat to the next layer as a rotated
and rescaled copy of x,

    x_out = lambda * R x,   lambda = ||x_hat|| / ||x||,   R the rotation taking x/||x|| to x_hat/||x_hat||,

with lambda and R treated as constants. The forward value is x_hat; the gradient reaching x is
lambda R^T g instead of the straight-through estimator's g. The codebooks are trained by the
same codebook and commitment losses as the straight-through estimator (as in the paper).

R is never formed as a D x D matrix. With u = x/||x||, q = x_hat/||x_hat|| and r = (u + q)/||u + q||,
R = H_q H_r with H_w = I - 2 w w^T: H_r reflects u onto -q, H_q reflects -q onto q; expanded,
R = I - 2 r r^T + 2 q u^T, two inner products per vector (as vector-quantize-pytorch's
``efficient_rotation_trick_transform``).

Two forms for quantizers with several codebooks (``rotation_form``):

* ``total`` (default): rotate x onto the total x_hat once; gradient to x: lambda R^T g.
* ``per_stage``: vector-quantize-pytorch's ``ResidualVQ(rotation_trick=True)``: every codebook
  m rotates its own target r_m (RVQ: x minus the earlier stages' codewords, detached; AVQ: x
  minus the other codebooks' codewords; PVQ: x's m-th subspace) onto its codeword q_m, and the
  rotated copies add up (PVQ: concatenate). The value is still x_hat; the gradient to x is
  sum_m lambda_m R_m^T g (RVQ, AVQ), which grows with the number of stages. The aux loss is
  then the sum over codebooks of each one's codebook + beta * commitment loss on its target.
  With one codebook (VQ) both forms are the same.

Differences from vector-quantize-pytorch: its ResidualVQ trains the codebooks by EMA by default
(here: by the codebook loss, like the paper; use ``ema`` for EMA without rotation); at x = 0 (no
direction to rotate) we fall back to the straight-through estimator for that vector (value
x_hat, gradient g) instead of dividing by a clamped norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.checks import ConfigError
from .estimator import Estimate, Estimator
from .gradient import GradientConfig
from .gumbel import combine_codewords
from .ste import check_beta, ste

_EPS = 1e-12
FORMS = ("total", "per_stage")


@dataclass
class RotationConfig(GradientConfig):
    """The rotation trick with codebook + beta * commitment loss (Adam)."""

    name: str = "rotation"
    beta: float = 0.25  # commitment loss weight
    rotation_form: str = "total"  # total: rotate onto the total x_hat | per_stage: each codebook's own, summed


def householder(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """H_w v = v - 2 w (w . v) for unit vectors w, row by row ([N, D] each)."""
    return v - 2.0 * w * (w * v).sum(-1, keepdim=True)


def _orthogonal_unit(u: torch.Tensor) -> torch.Tensor:
    """A unit vector orthogonal to each unit row of u: its smallest-magnitude axis minus its
    projection on u."""
    axis = torch.zeros_like(u).scatter_(-1, u.abs().argmin(dim=-1, keepdim=True), 1.0)
    w = axis - u * (u * axis).sum(-1, keepdim=True)
    return w / w.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def rotate_to(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """lambda R x for x, x_hat [N, D] with lambda and R detached: the value of x_hat (up to
    float rounding), the gradient lambda R^T g with respect to x and none to x_hat.

    A zero x_hat gives zero scale (value 0 = x_hat, no gradient to x). A zero x has no
    direction to rotate: that vector passes straight through (value x_hat, gradient g), not a
    scale of ||x_hat|| / eps. An x_hat pointing exactly opposite x (u = -q, no unique rotation)
    takes r orthogonal to u (then H_r u = u = -q), i.e. the half turn in the plane of u and r."""
    xd, qd = x.detach(), x_hat.detach()
    x_norm = xd.norm(dim=-1, keepdim=True)
    q_norm = qd.norm(dim=-1, keepdim=True)
    zero_x = x_norm <= _EPS
    u = xd / x_norm.clamp_min(_EPS)
    q = qd / q_norm.clamp_min(_EPS)
    bisector = u + q
    b_norm = bisector.norm(dim=-1, keepdim=True)
    r = torch.where(b_norm > 1e-6, bisector / b_norm.clamp_min(_EPS), _orthogonal_unit(u))
    scale = torch.where(zero_x, torch.zeros_like(q_norm), q_norm / x_norm.clamp_min(_EPS))
    rotated = scale * householder(householder(x, r), q)
    return torch.where(zero_x, x + (qd - xd), rotated)


def rotation_trick(x: torch.Tensor, x_hat: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotated output (:func:`rotate_to`) and the codebook + beta * commitment loss
    (mean over vectors of squared norms, as :func:`vqbench.training.ste.ste`)."""
    _, loss = ste(x, x_hat, beta)
    return rotate_to(x, x_hat), loss


def rotation_per_stage(quantizer, x: torch.Tensor, codes: torch.Tensor,
                       beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-stage form: (sum (or concatenation) over codebooks of lambda_m R_m r_m, the sum
    over codebooks of codebook + beta * commitment loss, a mean over vectors)."""
    n, m, d = x.shape[0], quantizer.num_codebooks, quantizer.codeword_dim
    selected = quantizer.selected_codewords(codes)  # [N, M, d], gradient to the codebooks
    if d == quantizer.dim:  # codewords add up: r_m = x minus the (detached) codewords it does not own
        with torch.no_grad():
            fixed = quantizer.ema_targets(x.detach(), codes)
        targets = fixed + (x - x.detach()).unsqueeze(1)
    else:  # subspaces
        targets = x.reshape(n, m, d)
    rotated = rotate_to(targets.reshape(n * m, d), selected.reshape(n * m, d)).view(n, m, d)
    codebook_loss = (targets.detach() - selected).pow(2).sum((1, 2)).mean()
    commitment_loss = (targets - selected.detach()).pow(2).sum((1, 2)).mean()
    return combine_codewords(quantizer, rotated), codebook_loss + beta * commitment_loss


class Rotation(Estimator):
    """The rotation trick, codebook + beta * commitment loss per element."""

    name = "rotation"
    Config = RotationConfig
    summary = ("x^ as lambda R x, lambda and R constant: gradient lambda R^T g (Fifty et al. 2024); "
               "rotation_form total | per_stage")

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        self.beta = float(settings["beta"])
        self.rotation_form = str(settings["rotation_form"])

    @classmethod
    def check(cls, settings, prefix=""):
        """beta >= 0 and a known rotation_form."""
        check_beta(settings, prefix)
        if settings["rotation_form"] not in FORMS:
            raise ConfigError(f"{prefix}rotation_form must be one of {list(FORMS)}, got {settings['rotation_form']!r}")

    def forward(self, x, x_hat, codes):
        """The rotated output (total or per-stage form) and the aux loss per element."""
        if self.rotation_form == "per_stage" and self.quantizer.num_codebooks > 1:
            out, loss = rotation_per_stage(self.quantizer, x, codes, self.beta)
        else:
            out, loss = rotation_trick(x, x_hat, self.beta)
        return Estimate(out, codes, loss / x.shape[1])
