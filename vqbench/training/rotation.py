"""The rotation trick (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation
Trick"): pass x_hat to the next layer as a rotated and rescaled copy of x,

    x_out = lambda * R x,   lambda = ||x_hat|| / ||x||,   R the rotation taking x/||x|| to x_hat/||x_hat||,

with lambda and R treated as constants. The forward value is x_hat; the gradient reaching x is
lambda R^T g instead of the straight-through estimator's g, so it keeps the angle (and relative
norm) between the incoming gradient and the quantization error.

R is never formed as a D x D matrix. With u = x/||x||, q = x_hat/||x_hat|| and r = (u + q)/||u + q||,
R is the product of two Householder reflections, R = H_q H_r with H_w = I - 2 w w^T: H_r reflects
u onto -q (r bisects u and q), H_q reflects -q onto q. Expanded, R = I - 2 r r^T + 2 q u^T, so
R x costs two inner products per vector. The codebooks are trained by the same codebook and
commitment losses as the straight-through estimator (as in the paper).
"""

from __future__ import annotations

import torch

from .ste import ste

_EPS = 1e-12


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

    A zero x or x_hat gives zero scale (the output is x_hat = 0, or x scaled to zero); an x_hat
    pointing exactly opposite x (u = -q, no unique rotation) takes r orthogonal to u (then
    H_r u = u = -q), i.e. the half turn in the plane of u and r."""
    xd, qd = x.detach(), x_hat.detach()
    x_norm = xd.norm(dim=-1, keepdim=True)
    q_norm = qd.norm(dim=-1, keepdim=True)
    u = xd / x_norm.clamp_min(_EPS)
    q = qd / q_norm.clamp_min(_EPS)
    bisector = u + q
    b_norm = bisector.norm(dim=-1, keepdim=True)
    r = torch.where(b_norm > 1e-6, bisector / b_norm.clamp_min(_EPS), _orthogonal_unit(u))
    scale = q_norm / x_norm.clamp_min(_EPS)
    return scale * householder(householder(x, r), q)


def rotation_trick(x: torch.Tensor, x_hat: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotated output (:func:`rotate_to`) and the codebook + beta * commitment loss
    (mean over vectors of squared norms, as :func:`vqbench.training.ste.ste`)."""
    _, loss = ste(x, x_hat, beta)
    return rotate_to(x, x_hat), loss
