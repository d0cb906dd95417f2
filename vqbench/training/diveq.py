"""DiVeQ (Vali, Bäckström & Solin, "DiVeQ: Differentiable Vector Quantization Using the
Reparameterization Trick", arXiv 2509.26469, ICLR 2026): quantization as adding an error
vector to x whose length is the true quantization error and whose direction points at the
chosen codeword, perturbed by a little Gaussian noise:

    x_out = x + ||x_hat - x|| * sg[ v_d / ||v_d|| ],   v_d = (x_hat - x) + v,   v ~ N(0, sigma2 I).

(The formulation as summarised from the paper's method section; the authors' own code was not
available to read.) Compared with NSVQ, whose error direction is random, the direction follows
the codeword, so the forward value is x_hat up to the small noise (exactly x_hat when
sigma2 = 0). Gradients: with d = (x_hat - x)/||x_hat - x|| and u the detached direction,
dL/dx = g - (u.g) d and dL/dx_hat = (u.g) d; for sigma2 = 0, u = d and the input gradient is
the projection (I - d d^T) g. No auxiliary loss.
"""

from __future__ import annotations

import torch

_EPS = 1e-12
DEFAULT_SIGMA2 = 1e-3  # our default noise variance (relative to the data's units); see the layer docs


def diveq(x: torch.Tensor, x_hat: torch.Tensor, sigma2: float = DEFAULT_SIGMA2,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """DiVeQ output for x, x_hat of shape [N, D]; `generator` draws the noise v."""
    if sigma2 < 0:
        raise ValueError(f"diveq: sigma2 must be >= 0, got {sigma2}")
    error = x_hat - x
    direction = error.detach()
    if sigma2 > 0:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction + noise * sigma2 ** 0.5
    unit = direction / direction.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    return x + error.norm(dim=-1, keepdim=True) * unit
