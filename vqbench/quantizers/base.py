"""The quantizer interface shared by VQ, RVQ, PVQ and AVQ.

A quantizer holds its codebooks as one parameter of shape [M, K, d]. Everything that depends
on which quantizer it is lives with its class, so a new quantizer is one module (plus one
line in ``BUILTIN_QUANTIZERS``, or ``register_quantizer(cls)`` from outside the package):

* ``Config``                    its config schema (a dataclass registered as ``quantizer=<name>``);
* ``check_config(qcfg, dim)``   its own setting checks (one-line ConfigErrors);
* ``encode`` / ``decode``       hard encoding and decoding;
* ``encode_ops()``              weighted operations per encoded vector (complexity.py's weights);
* ``memory_terms(qcfg, dim)``   its large allocations, estimated from its settings before any
                                work (vqbench.common.memory);
* ``classical_fit``             what its classical fit runs on the CPU (the ``kmeans`` optimizer's log);
* ``fit_kmeans(x, ...)``        its classical fit (the ``kmeans`` optimizer);
* ``init_from_data(data, g)``   its data-dependent initialisation (``optimizer.init=data``);
* ``ema_targets(x, codes)``     what each codebook should reproduce (EMA updates in a VQ-VAE);
* ``faiss_export``              which faiss index holds its codebooks and codes: ``"pq"``
                                (concatenated sub-codewords), ``"residual"`` (a sum of codewords)
                                or None (cannot be exported; ann/faiss_index.py refuses it).

The optimizers and experiments only ask the quantizer; nothing dispatches on its name.

* ``encode(x)``  -> int64 codes [N, M], computed without gradients, in chunks so that
  a 1M x 128 input never builds an N x K x D tensor.
* ``decode(codes)`` -> x_hat [N, D], differentiable with respect to the codebooks.
* ``quantize(x)``   -> (x_hat, codes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..common.checks import ConfigError, check_positive, check_range
from ..common.memory import codebook_terms
from ..common.options import MISSING
from ..common.progress import progress as progress_bar
from .argmin import argmin_rows

# Elements of scratch memory an encode chunk may use (float32: 4 bytes each, ~128 MB).
ENCODE_BUDGET_ELEMENTS = 1 << 25


@dataclass
class QuantizerConfig:
    """The `quantizer` config section; each quantizer subclasses it with its own defaults."""

    name: str = MISSING
    num_codebooks: int = 4  # M
    bits_per_codebook: int = 4  # log2 K, 1..16; bits per vector = M * bits_per_codebook
    beam_width: int = 1  # W of AVQ's beam search; settable for every quantizer (sweeps), ignored by vq/rvq/pvq


class Quantizer(nn.Module):
    """Base class: M codebooks of K codewords of dimension ``codeword_dim`` each."""

    name = "base"
    Config: type = QuantizerConfig
    faiss_export: str | None = None  # "pq", "residual" or None: see the module docstring
    greedy_stages: bool = False  # codes chosen stage by stage, each nearest to the residual before (RVQ)
    classical_fit: str = "faiss k-means"  # what fit_kmeans runs on the CPU

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int, codeword_dim: int):
        super().__init__()
        self.check_config({"num_codebooks": num_codebooks, "bits_per_codebook": bits_per_codebook}, dim)
        self.dim = dim
        self.num_codebooks = num_codebooks
        self.bits_per_codebook = bits_per_codebook
        self.codebook_size = 1 << bits_per_codebook
        self.codebooks = nn.Parameter(
            torch.randn(num_codebooks, self.codebook_size, codeword_dim) * 0.01
        )

    # ------------------------------------------------------------------ config
    @classmethod
    def check_config(cls, qcfg: Mapping[str, Any], dim: int | None = None, dim_source: str = "data dimension") -> None:
        """Raise a one-line ConfigError for settings this quantizer cannot run with; `dim` (the
        data dimension, named by `dim_source`) when known. Subclasses add their own checks."""
        check_range("quantizer.bits_per_codebook", qcfg["bits_per_codebook"], 1, 16, integer=True)
        check_positive(qcfg, "quantizer", *(k for k in ("num_codebooks", "beam_width") if k in qcfg))
        if dim is not None and dim < 1:
            raise ConfigError(f"quantizer={cls.name}: {dim_source} must be >= 1, got {dim}")

    @classmethod
    def from_config(cls, qcfg: Mapping[str, Any], dim: int) -> "Quantizer":
        """The quantizer a `quantizer` config section describes, for `dim`-dimensional data."""
        return cls(dim, num_codebooks=int(qcfg["num_codebooks"]), bits_per_codebook=int(qcfg["bits_per_codebook"]))

    @classmethod
    def memory_terms(cls, qcfg: Mapping[str, Any], dim: int) -> dict[str, float]:
        """Bytes of its large allocations for a `quantizer` section on `dim`-dimensional data, keyed
        by the setting that drives each (vqbench.common.memory): the codebooks of full-dimension
        codewords with Adam's copies. Subclasses with other codewords or tables override it."""
        return codebook_terms(int(qcfg["num_codebooks"]), 1 << int(qcfg["bits_per_codebook"]), dim)

    # ------------------------------------------------------------------ sizes
    @property
    def bits(self) -> float:
        """Bits per encoded vector: M * log2(K) (an integer when K is a power of two)."""
        if self.codebook_size == 1 << self.bits_per_codebook:
            return self.num_codebooks * self.bits_per_codebook
        return self.num_codebooks * math.log2(self.codebook_size)

    @torch.no_grad()
    def resize_codebooks(self, codebook_size: int) -> None:
        """Use ``codebook_size`` codewords per codebook (any K >= 2, not only 2^bits_per_codebook;
        the library layers' ``codebook_size``): fresh codebooks of the same small random start."""
        if codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {codebook_size}")
        M, _, d = self.codebooks.shape
        self.codebooks = nn.Parameter(torch.randn(M, codebook_size, d, device=self.codebooks.device,
                                                  dtype=self.codebooks.dtype) * 0.01)
        self.codebook_size = codebook_size

    @property
    def independent_parts(self) -> int:
        """Into how many equal slices of the dimensions the codes split independently (PVQ: one
        per subspace; quantizers whose codewords span all dimensions: 1)."""
        return 1

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
    def encode(self, x: torch.Tensor, chunk_size: int | None = None, progress: str | None = None) -> torch.Tensor:
        """Codes [N, M] (int64) of the vectors x [N, D]; `progress`: a bar with that label."""
        self._check_input(x)
        chunk = chunk_size or self.encode_chunk_size()
        x = x.to(device=self.codebooks.device, dtype=self.codebooks.dtype)
        self._prepare_encode()
        codes = torch.empty(x.shape[0], self.num_codebooks, dtype=torch.long, device=x.device)
        bar = progress_bar(total=x.shape[0], desc=progress, unit="vec") if progress else None
        for start in range(0, x.shape[0], chunk):
            codes[start : start + chunk] = self._encode_chunk(x[start : start + chunk])
            if bar is not None:
                bar.update(min(chunk, x.shape[0] - start))
        if bar is not None:
            bar.close()
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

    # ------------------------------------------------------------------ per-quantizer knowledge
    def encode_ops(self) -> int:
        """Weighted operations (vqbench.metrics.complexity's weights) to encode one vector."""
        raise NotImplementedError

    def fit_kmeans(self, x: np.ndarray, lloyd_iterations: int, alternations: int, seed: int,
                   progress: bool) -> dict[str, float]:
        """Classical fit of the codebooks to x [N, D] (float32, on the CPU); returns statistics."""
        raise NotImplementedError

    def init_from_data(self, data: torch.Tensor, generator: torch.Generator) -> None:
        """Set the codebooks from training vectors (``optimizer.init=data``)."""
        raise NotImplementedError

    def ema_targets(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """What each codebook alone should reproduce for each vector, given the codes: [N, M, d]."""
        raise NotImplementedError

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


# ---------------------------------------------------------------------------- shared by quantizers
# Two families: codebooks over subspaces (VQ = one subspace, PVQ) and codebooks over the full
# dimension whose codewords add up (RVQ, AVQ).
@torch.no_grad()
def init_subspaces_from_data(q: Quantizer, data: torch.Tensor, generator: torch.Generator) -> None:
    """Codebook m holds random training sub-vectors of subspace m."""
    M, K, d = q.codebooks.shape
    sample = _sample(q, data, generator)
    sub = sample.reshape(sample.shape[0], M, d)
    rows = torch.randint(sample.shape[0], (M, K), generator=generator).to(sample.device)
    q.codebooks.data = sub[rows, torch.arange(M, device=sample.device).unsqueeze(1)]


@torch.no_grad()
def init_residuals_from_data(q: Quantizer, data: torch.Tensor, generator: torch.Generator) -> None:
    """Codebook m holds random residuals left after greedy encoding with codebooks 0..m-1."""
    M, K, _ = q.codebooks.shape
    residual = _sample(q, data, generator).clone()
    for m in range(M):
        rows = torch.randint(residual.shape[0], (K,), generator=generator).to(residual.device)
        codebook = residual[rows].clone()
        q.codebooks.data[m] = codebook
        residual -= codebook[nearest_codeword(residual, codebook, codebook.pow(2).sum(1))]


def _sample(q: Quantizer, data: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, K = data.shape[0], q.codebook_size
    pick = torch.randint(n, (min(n, 64 * K),), generator=generator)
    return data[pick].to(q.codebooks)


def additive_ema_targets(selected: torch.Tensor, x: torch.Tensor, earlier_only: bool) -> torch.Tensor:
    """x minus the other codebooks' selected codewords [N, M, D]: all others (AVQ) or only the
    earlier stages (RVQ, whose stage m quantizes the residual of stages 0..m-1)."""
    others = selected.cumsum(dim=1) - selected if earlier_only else selected.sum(dim=1, keepdim=True) - selected
    return x.unsqueeze(1) - others
