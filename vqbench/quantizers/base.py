"""The quantizer interface shared by VQ, RVQ, PVQ and AVQ.

A quantizer holds its codebooks as one parameter of shape [M, K, d] and does hard
encoding and decoding only; training lives in :mod:`vqbench.training`.

* ``encode(x)``  -> int64 codes [N, M], computed without gradients, in chunks so that
  a 1M x 128 input never builds an N x K x D tensor.
* ``decode(codes)`` -> x_hat [N, D], differentiable with respect to the codebooks.
* ``quantize(x)``   -> (x_hat, codes).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .argmin import argmin_rows

# Elements of scratch memory an encode chunk may use (float32: 4 bytes each, ~128 MB).
ENCODE_BUDGET_ELEMENTS = 1 << 25


class Quantizer(nn.Module):
    """Base class: M codebooks of K codewords of dimension ``codeword_dim`` each."""

    name = "base"

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int, codeword_dim: int):
        super().__init__()
        if dim < 1:
            raise ValueError(f"quantizer: data dimension must be >= 1, got {dim}")
        if num_codebooks < 1:
            raise ValueError(f"quantizer.num_codebooks must be >= 1, got {num_codebooks}")
        if not 1 <= bits_per_codebook <= 16:
            raise ValueError(f"quantizer.bits_per_codebook must be in 1..16, got {bits_per_codebook}")
        self.dim = dim
        self.num_codebooks = num_codebooks
        self.bits_per_codebook = bits_per_codebook
        self.codebook_size = 1 << bits_per_codebook
        self.codebooks = nn.Parameter(
            torch.randn(num_codebooks, self.codebook_size, codeword_dim) * 0.01
        )

    # ------------------------------------------------------------------ sizes
    @property
    def bits(self) -> int:
        """Bits per encoded vector: M * log2(K)."""
        return self.num_codebooks * self.bits_per_codebook

    @property
    def codeword_dim(self) -> int:
        return self.codebooks.shape[-1]

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, M={self.num_codebooks}, K={self.codebook_size}, "
            f"codeword_dim={self.codeword_dim}, bits={self.bits}"
        )

    # ------------------------------------------------------------------ encode
    def encode_chunk_size(self) -> int:
        """Vectors per encode chunk so the chunk's scratch tensors stay within budget."""
        per_vector = self.num_codebooks * self.codebook_size
        return max(1, ENCODE_BUDGET_ELEMENTS // per_vector)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """Codes [N, M] (int64) of the vectors x [N, D]."""
        self._check_input(x)
        chunk = chunk_size or self.encode_chunk_size()
        x = x.to(device=self.codebooks.device, dtype=self.codebooks.dtype)
        self._prepare_encode()
        codes = torch.empty(x.shape[0], self.num_codebooks, dtype=torch.long, device=x.device)
        for start in range(0, x.shape[0], chunk):
            codes[start : start + chunk] = self._encode_chunk(x[start : start + chunk])
        return codes

    def _prepare_encode(self) -> None:
        """Hook: precompute per-codebook tables once per encode call."""

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ decode
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction [N, D] from codes [N, M]; differentiable w.r.t. the codebooks."""
        raise NotImplementedError

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.encode(x)
        return self.decode(codes), codes

    def selected_codewords(self, codes: torch.Tensor) -> torch.Tensor:
        """The chosen codeword of every codebook, [N, M, d] (differentiable).

        One row gather from the flattened [M*K, d] codebooks; its backward is one index_add,
        several times faster on CPU than advanced indexing (index_put) or an embedding.
        """
        M, K, d = self.codebooks.shape
        flat = (codes + torch.arange(0, M * K, K, device=codes.device)).flatten()
        return self.codebooks.view(M * K, d).index_select(0, flat).view(codes.shape[0], M, d)

    # ------------------------------------------------------------------ checks
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 2:
            raise ValueError(f"{self.name}: expected a 2-D tensor [N, {self.dim}], got shape {tuple(x.shape)}")
        if x.shape[1] != self.dim:
            raise ValueError(
                f"{self.name}: data dimension {x.shape[1]} does not match the quantizer's dimension {self.dim}"
            )


class _SumOfCodewords(torch.autograd.Function):
    """x_hat = sum_m C[m, codes[:, m]] with a backward of M row scatter-adds of the incoming
    gradient; autograd's own route would first copy the gradient M times ([N, M, d])."""

    @staticmethod
    def forward(ctx, codebooks: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        M, K, d = codebooks.shape
        flat = codes + torch.arange(0, M * K, K, device=codes.device)  # [N, M] rows of [M*K, d]
        ctx.save_for_backward(flat)
        ctx.codebooks_shape = codebooks.shape
        return codebooks.reshape(M * K, d).index_select(0, flat.flatten()).view(codes.shape[0], M, d).sum(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (flat,) = ctx.saved_tensors
        M, K, d = ctx.codebooks_shape
        grad_books = grad.new_zeros(M * K, d)
        for m in range(M):  # M (a handful) scatter-adds of the same [N, d] gradient
            grad_books.index_add_(0, flat[:, m], grad)
        return grad_books.view(M, K, d), None


def sum_of_codewords(codebooks: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """sum_m codebooks[m, codes[:, m]] -> [N, d], differentiable w.r.t. the codebooks [M, K, d]."""
    return _SumOfCodewords.apply(codebooks, codes)


def nearest_codeword(x: torch.Tensor, codebook: torch.Tensor, codebook_sq_norms: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codeword for each row of x: argmin ||x - c||^2.

    Uses ||c||^2 - 2<x, c> (the ||x||^2 term does not change the argmin).
    """
    scores = torch.addmm(codebook_sq_norms.unsqueeze(0), x, codebook.t(), alpha=-2.0)
    return argmin_rows(scores)


def log2_int(k: int) -> int:
    bits = int(math.log2(k))
    if 1 << bits != k:
        raise ValueError(f"codebook size must be a power of two, got {k}")
    return bits
