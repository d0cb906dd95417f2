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
from collections.abc import Sequence

import torch

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
