"""The ``ema`` estimator: EMA codebook updates (van den Oord et al., "Neural Discrete
Representation Learning", NeurIPS 2017, appendix A.1) with a straight-through output. It is also
what ``optimizer=kmeans`` uses inside a VQ-VAE (the VQ-VAE's "k-means").

What passes on is x + sg(x_hat - x) (identity gradient), with the commitment loss
beta * mean over elements of (x - sg(x_hat))^2 pulling x towards its codeword. The codebooks get
no gradient; after each optimizer step (``after_step``) they move by exponential moving averages:
for every codeword k of codebook m,

    N <- decay * N + (1 - decay) * n_batch,     S <- decay * S + (1 - decay) * sum_batch,
    c <- S / N~,   N~ = (N + eps) / (sum_k N + K eps) * sum_k N   (Laplace smoothing).

The *target* of codebook m is what that codebook alone should reproduce, given the codes
(``Quantizer.ema_targets``): VQ, PVQ: the vector's m-th subspace; RVQ: the residual left by
stages 0..m-1; AVQ: x minus the codewords selected from all the other codebooks. All codebooks
are updated at once from one [N, M, d] target tensor with a single ``index_add_``. Both averages
start from the current codebooks with a pseudo-count of 1 per codeword, and restart so for
codewords that are replaced or re-initialised (``codewords_replaced``).

Against vector-quantize-pytorch's ``VectorQuantize`` (EMA by default): the same averages and
Laplace smoothing (eps 1e-5); it starts the counts at zero and initialises by k-means on the
first batch (``kmeans_init``), where we start from the current codebooks with a count of 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..common.checks import check_range
from ..quantizers import Quantizer
from .estimator import Estimate, Estimator
from .gradient import GradientConfig
from .ste import check_beta

EMA_EPS = 1e-5


@dataclass
class EMAConfig(GradientConfig):
    """EMA codebook updates with a straight-through output and beta * commitment loss."""

    name: str = "ema"
    beta: float = 0.25  # commitment loss weight
    ema_decay: float = 0.99  # decay of the codebook statistics


def ema_targets(quantizer: Quantizer, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """What each codebook should reproduce for each vector: [N, M, codeword_dim] (the quantizer's own)."""
    return quantizer.ema_targets(x, codes)


def ema_straight_through(x: torch.Tensor, x_hat: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + sg(x_hat - x), beta * mean over elements of (x - sg(x_hat))^2) for x, x_hat [N, D];
    no gradient reaches x_hat."""
    x_hat = x_hat.detach()
    return x + (x_hat - x).detach(), beta * F.mse_loss(x, x_hat)


class EMA(Estimator):
    """Straight-through output, beta * commitment loss; EMA moves the codebooks after each step.
    State (buffers ``counts`` [M, K] and ``sums`` [M, K, d]) is in ``state_dict``."""

    name = "ema"
    Config = EMAConfig
    codebooks_by_gradient = False
    summary = "x + sg(x^ - x); codebooks move by moving averages of their assigned targets, no gradient (EMA)"

    def __init__(self, quantizer: Quantizer, settings, generator=None, eps: float = EMA_EPS):
        super().__init__(quantizer, settings, generator)
        decay = float(settings["ema_decay"])
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        if eps <= 0:
            raise ValueError(f"EMA Laplace smoothing eps must be > 0, got {eps}")
        self.beta = float(settings["beta"])
        self.decay = decay
        self.eps = eps
        books = quantizer.codebooks.detach()
        self.register_buffer("counts", torch.ones(books.shape[:2], dtype=books.dtype, device=books.device))
        self.register_buffer("sums", books.clone())

    @classmethod
    def check(cls, settings, prefix=""):
        """beta >= 0 and ema_decay in [0, 1)."""
        check_beta(settings, prefix)
        check_range(f"{prefix}ema_decay", settings["ema_decay"], 0, 1, hi_open=True)

    def extra_repr(self) -> str:
        """The settings printed in the module's repr."""
        return f"beta={self.beta}, ema_decay={self.decay}"

    def forward(self, x, x_hat, codes):
        """Straight-through output and beta * commitment loss (mean over elements)."""
        out, loss = ema_straight_through(x, x_hat, self.beta)
        return Estimate(out, codes, loss)

    def after_step(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA update of the codebooks from the step's vectors and codes."""
        self.update(x, codes)

    def codewords_replaced(self, mask: torch.Tensor) -> None:
        """Restart the averages of the codewords `mask` [M, K]."""
        self.reset(mask)

    @torch.no_grad()
    def update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step from vectors x [N, D] and their codes [N, M]."""
        q = self.quantizer
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
        """Restart the averages of codewords ``mask`` [M, K] from their current values with a
        pseudo-count of 1."""
        books = self.quantizer.codebooks.detach()
        self.counts[mask] = 1.0
        self.sums[mask] = books[mask]

    @torch.no_grad()
    def step(self, x: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """One EMA update from x [N, D] and its codes (encoded here if not given); returns the codes."""
        if codes is None:
            codes = self.quantizer.encode(x)
        self.update(x, codes)
        return codes


class EMACodebooks(EMA):
    """The EMA state alone, for code that drives it by hand: ``EMACodebooks(quantizer, decay)``
    (its ``forward``, if called, weighs the commitment loss by the schema's beta, ``EMAConfig``)."""

    def __init__(self, quantizer: Quantizer, decay: float, eps: float = EMA_EPS):
        super().__init__(quantizer, {"ema_decay": decay, "beta": EMAConfig.beta}, eps=eps)
