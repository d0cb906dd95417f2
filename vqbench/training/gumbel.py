"""The ``gumbel`` estimator: straight-through Gumbel-softmax over codewords (Jang, Gu & Poole,
"Categorical Reparameterization with Gumbel-Softmax", ICLR 2017; Maddison et al. 2017), per codebook.

For codebook m with codewords C_m [K, d] and target t (what codebook m alone should reproduce:
the quantizer's ``ema_targets``, i.e. the sub-vector for VQ/PVQ, the residual of the earlier
stages for RVQ, x minus the other codebooks' codewords for AVQ):

    logits_k = -||t - C_m[k]||^2 / temperature,    g_k ~ Gumbel(0, 1),
    soft     = softmax(logits + g),                hard = one_hot(argmax(logits + g)),
    y        = hard + soft - sg[soft]              (straight-through: forward hard, backward soft),
    x_hat_m  = y C_m.

The temperature is in units of squared distance and the noise is added at unit scale, so the
sampled codeword follows softmax(-||t - c||^2 / temperature): as temperature -> 0 it is the
nearest codeword and the relaxation is one-hot. (Dividing the distances by the batch's mean
nearest distance instead, a unitless temperature, failed in a model: with a fresh codebook far
from the encoder's outputs all codewords looked alike, the samples were uniform and nothing
trained; see scripts/layer_estimators.py.) Codebooks are sampled one after another
(m = 0..M-1), each given the current codes of the others, so RVQ samples stage m on the
residual its earlier (sampled) stages left, and AVQ resamples each codebook given the others.
Gradients reach x only through the logits, and the codebooks through both. No auxiliary loss.

Differences from vector-quantize-pytorch (``VectorQuantize(stochastic_sample_codes=True,
straight_through=True)``, its ``gumbel_sample``): its logits are the *un-squared* distances,
-||t - c|| / temperature, so its temperature is in units of distance, not squared distance;
its Gumbel noise enters only the hard sample, while its soft term is softmax(logits /
temperature) without noise (ours: softmax of the same noisy logits as the sample, as in Jang
et al.); and its codebooks are trained by EMA by default. Our ``temperature`` is therefore not
interchangeable with theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.checks import check_range
from ..quantizers import Quantizer
from .estimator import Estimate, Estimator
from .gradient import GradientConfig

_TINY = 1e-20


def gumbel_noise(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise -log(-log U), U ~ Uniform(0, 1), of `like`'s device and dtype."""
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    exponential = -torch.log(u.clamp_min(_TINY))  # Exp(1), > 0
    return -torch.log(exponential.clamp_min(_TINY))


def gumbel_select(target: torch.Tensor, codebook: torch.Tensor, temperature: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight-through Gumbel sample of one codeword per row of target [N, d] from codebook [K, d]:
    (the selected codewords [N, d], forward-exact, and their indices [N]), computed in the wider
    of the two dtypes (as the other estimators' x + (x_hat - x) promotes)."""
    if temperature <= 0:
        raise ValueError(f"gumbel: temperature must be > 0, got {temperature}")
    dtype = torch.promote_types(target.dtype, codebook.dtype)  # float64 data, float32 codebooks
    target, codebook = target.to(dtype), codebook.to(dtype)
    dist = (target.pow(2).sum(-1, keepdim=True) - 2.0 * target @ codebook.t()
            + codebook.pow(2).sum(-1).unsqueeze(0))
    perturbed = -dist / temperature + gumbel_noise(dist.shape, dist, generator)
    soft = perturbed.softmax(dim=-1)
    index = perturbed.argmax(dim=-1)
    # hard one-hot forward, softmax backward: (soft - sg[soft]) is exactly 0 in the forward pass,
    # so the output is exactly the sampled codeword, and its gradient is that of
    # (hard + soft - sg[soft]) @ codebook.
    return codebook.index_select(0, index) + (soft - soft.detach()) @ codebook, index


def combine_codewords(quantizer: Quantizer, selected: torch.Tensor) -> torch.Tensor:
    """x_hat [N, D] from one codeword per codebook [N, M, d]: their sum when codewords span the
    full dimension (VQ, RVQ, AVQ), their concatenation when they span subspaces (PVQ)."""
    if quantizer.codeword_dim == quantizer.dim:
        return selected.sum(dim=1)
    return selected.reshape(selected.shape[0], quantizer.dim)


def gumbel_quantize(quantizer: Quantizer, x: torch.Tensor, codes: torch.Tensor, temperature: float,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gumbel-softmax stand-in for x_hat: (x_out [N, D], the sampled codes [N, M]).

    `codes` [N, M] (the hard encoding) seeds the codes of codebooks not yet sampled (AVQ)."""
    codes = codes.clone()
    selected = []
    for m in range(quantizer.num_codebooks):
        target = quantizer.ema_targets(x, codes)[:, m]
        codeword, codes[:, m] = gumbel_select(target, quantizer.codebooks[m], temperature, generator)
        selected.append(codeword)
    return combine_codewords(quantizer, torch.stack(selected, dim=1)), codes


@dataclass
class GumbelConfig(GradientConfig):
    """Straight-through Gumbel-softmax sampling of the codewords (Adam)."""

    name: str = "gumbel"
    temperature: float = 1.0  # divides the squared distances (units of squared distance)


class Gumbel(Estimator):
    """Straight-through Gumbel-softmax sample per codebook; no auxiliary loss."""

    name = "gumbel"
    Config = GumbelConfig
    summary = ("straight-through Gumbel-softmax sample per codebook on its target, logits -||t - c||^2/T "
               "(Jang et al. 2017; T in squared-distance units)")

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        self.temperature = float(settings["temperature"])

    @classmethod
    def check(cls, settings, prefix=""):
        """temperature > 0."""
        check_range(f"{prefix}temperature", settings["temperature"], 0, lo_open=True)

    def forward(self, x, x_hat, codes):
        """The Gumbel-sampled output and the sampled codes; zero aux loss."""
        out, codes = gumbel_quantize(self.quantizer, x, codes, self.temperature, self.generator)
        return Estimate(out, codes, x.new_zeros(()))
