"""RVQ: M greedy residual stages; stage m quantizes what stages 0..m-1 left over.

x_hat = sum_m C_m[i_m], with i_m = argmin_k ||r_m - C_m[k]||^2 and r_{m+1} = r_m - C_m[i_m].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..metrics.complexity import ADD, MOVE, nearest_codeword_ops
from .base import (
    ENCODE_BUDGET_ELEMENTS,
    Quantizer,
    QuantizerConfig,
    additive_ema_targets,
    init_residuals_from_data,
    nearest_codeword,
    sum_of_codewords,
)
from .kmeans import fit_residual_kmeans


@dataclass
class RVQConfig(QuantizerConfig):
    name: str = "rvq"


class RVQ(Quantizer):
    name = "rvq"
    Config = RVQConfig
    faiss_export = "residual"
    greedy_stages = True

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int):
        super().__init__(dim, num_codebooks, bits_per_codebook, codeword_dim=dim)

    def encode_chunk_size(self) -> int:
        # Stages run one after another, so only one N x K score matrix is alive at a time;
        # a cache-sized one (~4 MB) encodes 1.4x faster than a 128 MB one (M = 8, K = 256,
        # D = 128, one thread: 67k vs 47k vectors/s; scripts/bench.py).
        return max(1, (ENCODE_BUDGET_ELEMENTS >> 5) // self.codebook_size)

    def _prepare_encode(self) -> None:
        self._sq_norms = self.codebooks.detach().pow(2).sum(-1)  # [M, K], once per encode call

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        residual = x.clone()
        codebooks = self.codebooks.detach()
        codes = torch.empty(x.shape[0], self.num_codebooks, dtype=torch.long, device=x.device)
        for m in range(self.num_codebooks):
            idx = nearest_codeword(residual, codebooks[m], self._sq_norms[m])
            codes[:, m] = idx
            if m + 1 < self.num_codebooks:
                residual -= codebooks[m].index_select(0, idx)
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return sum_of_codewords(self.codebooks, codes)

    def encode_ops(self) -> int:
        # per stage: nearest codeword, then the residual update (D subs + D moves)
        return self.num_codebooks * (nearest_codeword_ops(self.codebook_size, self.dim) + self.dim * (ADD + MOVE))

    def fit_kmeans(self, x: np.ndarray, lloyd_iterations: int, alternations: int, seed: int,
                   progress: bool) -> dict[str, float]:
        fit_residual_kmeans(self, x, lloyd_iterations, seed, progress)
        return {}

    def init_from_data(self, data: torch.Tensor, generator: torch.Generator) -> None:
        init_residuals_from_data(self, data, generator)

    def ema_targets(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return additive_ema_targets(self.selected_codewords(codes), x, earlier_only=True)
