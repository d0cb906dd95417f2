"""FSQ: finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE
Made Simple"). Codebook-free: each of d channels is bounded to an interval and rounded to
one of L_i levels, so a vector takes prod L_i values and costs sum log2 L_i bits.

Per channel with L levels (the paper's bound, which handles even L by a half-step offset):

    half = (L - 1)(1 + 1e-3) / 2,   offset = 0.5 if L is even else 0,   shift = atanh(offset / half),
    bounded = tanh(z + shift) * half - offset        (in (-L/2, L/2 - 1] for even L, (-(L-1)/2, (L-1)/2) for odd),
    q = round(bounded) with a straight-through gradient, an integer in [-(L//2), L - 1 - L//2],
    output q / (L // 2)                               (in [-1, 1]).

Codes are the level indices q + L//2 in [0, L). ``FSQ_LEVELS`` gives the levels used for the
VQ-VAE's bitrates (12..40 bits per latent vector, four codebooks of 3..10 bits in the paper):
channels of 8 levels (3 bits) and, where the bits are not a multiple of 3, one or two
channels of 16 levels (4 bits), so sum log2 L_i equals the bitrate exactly and every channel
has at least 5 levels, as Mentzer et al. recommend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from torch import nn

from ..common.checks import ConfigError, check_positive, check_range
from ..common.memory import codebook_terms
from ..metrics.complexity import ADD, MAC, MOVE, MUL
from .base import QuantizerConfig

_BOUND_EPS = 1e-3


def levels_for_bits(bits: int) -> tuple[int, ...]:
    """Levels (powers of two, 8 or 16) whose log2 sum is exactly `bits` (>= 6, or 3)."""
    if bits == 3 or bits >= 6 and bits % 3 == 0:
        return (8,) * (bits // 3)
    if bits >= 4 and bits % 3 == 1:
        return (16,) + (8,) * ((bits - 4) // 3)
    if bits >= 8 and bits % 3 == 2:
        return (16, 16) + (8,) * ((bits - 8) // 3)
    raise ValueError(f"fsq: no level table for {bits} bits (use 3, 4, 6, 7 or >= 8 bits, or give the levels)")


# The VQ-VAE bitrates (M = 4 codebooks of 3..10 bits).
FSQ_LEVELS: dict[int, tuple[int, ...]] = {bits: levels_for_bits(bits) for bits in range(12, 41, 4)}


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """The levels as a tuple, or a ValueError naming the bad one (each must be an integer >= 2)."""
    levels = tuple(levels)
    if not levels:
        raise ValueError("fsq: levels must name at least one channel")
    for level in levels:
        if int(level) != level or level < 2:
            raise ValueError(f"fsq: every level must be an integer >= 2, got {level!r} in {list(levels)}")
    return tuple(int(level) for level in levels)


def fsq_bits(levels: Sequence[int]) -> float:
    """Bits per vector: sum log2 L_i."""
    return sum(math.log2(level) for level in levels)


class _RoundST(torch.autograd.Function):
    """round() forward, identity backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient."""
    return _RoundST.apply(x)


def _level_tensors(levels: Sequence[int], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    L = torch.tensor(levels, dtype=like.dtype, device=like.device)
    return L, torch.div(L, 2, rounding_mode="floor")


def bound(z: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Channel i of z [..., d] squashed into the interval that rounds to L_i integer levels."""
    L, _ = _level_tensors(levels, z)
    half = (L - 1) * (1 + _BOUND_EPS) / 2
    offset = torch.where(L % 2 == 0, 0.5, 0.0).to(z.dtype)
    shift = torch.atanh(offset / half)
    return torch.tanh(z + shift) * half - offset


def fsq_quantize(z: torch.Tensor, levels: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(quantized values in [-1, 1] with straight-through gradients, level indices int64), both [..., d]."""
    _, half_width = _level_tensors(levels, z)
    q = round_ste(bound(z, levels))
    codes = (q.detach() + half_width).long()
    return q / half_width, codes


def fsq_decode(codes: torch.Tensor, levels: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Quantized values [..., d] in [-1, 1] from level indices [..., d]."""
    _, half_width = _level_tensors(levels, torch.empty((), dtype=dtype, device=codes.device))
    return (codes.to(dtype) - half_width) / half_width


def codes_to_index(codes: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """One integer per vector (mixed radix, channel 0 least significant) from codes [..., d]."""
    radix = torch.tensor([math.prod(levels[:i]) for i in range(len(levels))], device=codes.device)
    return (codes * radix).sum(-1)


def index_to_codes(index: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Codes [..., d] from the integers of :func:`codes_to_index`."""
    radix = torch.tensor([math.prod(levels[:i]) for i in range(len(levels))], device=index.device)
    L = torch.tensor(levels, device=index.device)
    return torch.div(index.unsqueeze(-1), radix, rounding_mode="floor") % L


# ---------------------------------------------------------------------------- quantizer=fsq
@dataclass
class FSQConfig(QuantizerConfig):
    """``quantizer=fsq``: finite scalar quantization at num_codebooks * bits_per_codebook bits per
    vector (the levels of ``FSQ_LEVELS``/``levels_for_bits``), or at the given ``levels``."""

    name: str = "fsq"
    levels: Optional[List[int]] = None  # levels per channel (e.g. [8, 5, 5, 5]); null: from the bits


class FSQQuantizer(nn.Module):
    """FSQ as a quantizer of the experiments (``quantizer=fsq``, toy and VQ-VAE): a linear
    projection D -> d channels, bounded and rounded per channel (straight-through), projected back.

    It has no codebooks: the gradient optimizers train its projections by its own straight-through
    rounding (any ``optimizer=`` other than kmeans trains it the same way: estimators act on
    codebooks), the ``forward`` is its training layer ``(x_hat, codes, 0)``, and codes are the
    level index of each channel [N, d]. ``codebook_size`` is the largest level count (for usage
    statistics)."""

    name = "fsq"
    Config = FSQConfig
    faiss_export = None
    codebook_free = True

    def __init__(self, dim: int, levels: Sequence[int]):
        super().__init__()
        self.levels = check_levels(levels)
        self.dim = dim
        d = len(self.levels)
        self.project_in: nn.Module = nn.Identity() if d == dim else nn.Linear(dim, d)
        self.project_out: nn.Module = nn.Identity() if d == dim else nn.Linear(d, dim)
        self.num_codebooks = d
        self.codebook_size = max(self.levels)
        self.bits_per_codebook = math.log2(self.codebook_size)

    @staticmethod
    def levels_of(qcfg: Mapping[str, Any]) -> tuple[int, ...]:
        """The levels a ``quantizer=fsq`` section asks for (ConfigError naming the keys if none fit)."""
        if qcfg.get("levels"):
            try:
                return check_levels(qcfg["levels"])
            except ValueError as err:
                raise ConfigError(f"quantizer.levels: {err}") from None
        bits = int(qcfg["num_codebooks"]) * int(qcfg["bits_per_codebook"])
        try:
            return FSQ_LEVELS.get(bits) or levels_for_bits(bits)
        except ValueError:
            raise ConfigError(f"quantizer=fsq: no FSQ level table for {bits} bits (quantizer.num_codebooks * "
                              f"quantizer.bits_per_codebook); use 3, 4, 6, 7 or >= 8 bits, or quantizer.levels") from None

    @classmethod
    def check_config(cls, qcfg: Mapping[str, Any], dim: int | None = None, dim_source: str = "data dimension") -> None:
        """One-line ConfigErrors: the bits must have a level table (or the levels be valid)."""
        check_range("quantizer.bits_per_codebook", qcfg["bits_per_codebook"], 1, 16, integer=True)
        check_positive(qcfg, "quantizer", "num_codebooks")
        cls.levels_of(qcfg)
        if dim is not None and dim < 1:
            raise ConfigError(f"quantizer=fsq: {dim_source} must be >= 1, got {dim}")

    @classmethod
    def from_config(cls, qcfg: Mapping[str, Any], dim: int) -> "FSQQuantizer":
        """The FSQ quantizer a ``quantizer=fsq`` section describes, for `dim`-dimensional data."""
        return cls(dim, cls.levels_of(qcfg))

    @classmethod
    def memory_terms(cls, qcfg: Mapping[str, Any], dim: int) -> dict[str, float]:
        """Counted like the codebooks of a quantizer of the same num_codebooks and bits_per_codebook
        (its projections, 2 D d weights, are smaller for the level tables' d; a rough size, as
        every estimate in vqbench.common.memory)."""
        return codebook_terms(int(qcfg["num_codebooks"]), 1 << int(qcfg["bits_per_codebook"]), dim)

    @property
    def bits(self) -> float:
        """Bits per vector, sum log2 L_i."""
        return fsq_bits(self.levels)

    def extra_repr(self) -> str:
        """The settings printed in the module's repr."""
        return f"dim={self.dim}, levels={list(self.levels)}, bits={self.bits:g}"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass of x [N, D]: (x_hat with straight-through gradients, codes [N, d], zero aux loss)."""
        q, codes = fsq_quantize(self.project_in(x), self.levels)
        return self.project_out(q), codes, x.new_zeros(())

    def after_step(self, batches_left: int | None = None) -> None:
        """Nothing to do after an optimizer step (no codebooks, no replacement)."""

    @torch.no_grad()
    def encode(self, x: torch.Tensor, chunk_size: int | None = None, progress: str | None = None) -> torch.Tensor:
        """Level indices [N, d] (int64) of x [N, D]."""
        return fsq_quantize(self.project_in(x), self.levels)[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """x_hat [N, D] from level indices [N, d]."""
        weight = next(self.parameters(), None)
        dtype = weight.dtype if weight is not None else torch.float32
        return self.project_out(fsq_decode(codes, self.levels, dtype))

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_hat, codes) of x [N, D], no gradient to the codes."""
        codes = self.encode(x)
        return self.decode(codes), codes

    def encode_ops(self) -> int:
        """Weighted operations per vector: the projection (D*d MACs), then per channel a bound
        (add, tanh counted as 4 ops, mul, add), a rounding (move) and the index (add)."""
        d = len(self.levels)
        projection = 0 if isinstance(self.project_in, nn.Identity) else self.dim * d * MAC
        return projection + d * (ADD + 4 + MUL + ADD + MOVE + ADD)
