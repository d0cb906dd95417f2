"""FSQ as a layer: project D -> d scalar channels, bound and round each to its levels, project back."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..quantizers.fsq import FSQ_LEVELS, check_levels, fsq_bits, fsq_decode, fsq_quantize, levels_for_bits
from .checks import check_codes, check_finite, check_floating, check_integer
from .result import Quantized


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023) of [..., D] tensors; codebook-free.

    ``FSQ(dim, levels=None, bits=None)``: give the levels per channel (e.g. ``[8, 5, 5, 5]``) or
    a bitrate (``bits=12`` -> ``FSQ_LEVELS[12]`` = [8, 8, 8, 8], any bits that
    :func:`vqbench.quantizers.fsq.levels_for_bits` can split; default 12 bits). x [..., D] is
    projected to d = len(levels) channels by a linear layer (none when D == d), each channel is
    bounded by tanh and rounded to its levels with a straight-through gradient, and a second
    linear layer projects back to D. ``forward`` returns :class:`Quantized` with codes
    [..., d] (the level index of each channel) and a zero aux_loss; train and eval compute the
    same thing (FSQ has no noise or sampling). x must be a floating-point tensor (any float
    dtype: with projections it is cast to theirs, as the codebook layers cast to their
    codebooks') whose values are all finite; a NaN or Inf raises a ValueError naming the first
    bad row, and ``decode`` refuses a level index outside 0..L_i-1.
    """

    def __init__(self, dim: int, levels: Sequence[int] | None = None, bits: int | None = None):
        super().__init__()
        if levels is not None and bits is not None:
            raise ValueError("vqbench.FSQ: give levels or bits, not both")
        dim = check_integer("FSQ", "dim", dim, 1)
        if levels is None:
            bits = 12 if bits is None else check_integer("FSQ", "bits", bits, 1)
            levels = FSQ_LEVELS.get(bits) or levels_for_bits(bits)
        self.levels = check_levels(levels)
        self.dim = dim
        d = len(self.levels)
        self.project_in: nn.Module = nn.Identity() if d == dim else nn.Linear(dim, d)
        self.project_out: nn.Module = nn.Identity() if d == dim else nn.Linear(d, dim)

    @property
    def num_channels(self) -> int:
        """d, the scalar channels (codes per vector)."""
        return len(self.levels)

    @property
    def bits(self) -> float:
        """Bits per vector, sum log2 L_i."""
        return fsq_bits(self.levels)

    def extra_repr(self) -> str:
        """The settings printed in the module's repr."""
        return f"dim={self.dim}, levels={list(self.levels)}, bits={self.bits:g}"

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """x checked (floating point, shape [..., dim], finite), in the projections' dtype."""
        check_floating("FSQ", x)
        if x.dim() < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"vqbench.FSQ: the input's last axis must have size dim={self.dim}, got shape {tuple(x.shape)}")
        check_finite("FSQ", x.detach())
        weight = next(self.parameters(), None)
        return x if weight is None else x.to(weight.dtype)

    def forward(self, x: torch.Tensor) -> Quantized:
        """Quantize x [..., D] -> :class:`Quantized` ``(x_hat [..., D], codes [..., d], 0)``."""
        z = self._input(x)
        q, codes = fsq_quantize(self.project_in(z), self.levels)
        return Quantized(self.project_out(q), codes, z.new_zeros(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Level indices [..., d] (int64) of x [..., D]."""
        z = self._input(x)
        with torch.no_grad():
            return fsq_quantize(self.project_in(z), self.levels)[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """x_hat [..., D] from level indices [..., d]."""
        if codes.dim() < 1 or codes.shape[-1] != self.num_channels:
            raise ValueError(f"vqbench.FSQ: codes' last axis must have size {self.num_channels}, "
                             f"got shape {tuple(codes.shape)}")
        check_codes("FSQ", codes, torch.tensor(self.levels))
        weight = next(self.parameters(), None)
        dtype = weight.dtype if weight is not None else torch.float32
        device = weight.device if weight is not None else codes.device
        return self.project_out(fsq_decode(codes.to(device), self.levels, dtype))
