"""RVQ: M greedy residual stages; stage m quantizes what stages 0..m-1 left over.

x_hat = sum_m C_m[i_m], with i_m = argmin_k ||r_m - C_m[k]||^2 and r_{m+1} = r_m - C_m[i_m].
"""

from __future__ import annotations

import torch

from .base import ENCODE_BUDGET_ELEMENTS, Quantizer, nearest_codeword


class RVQ(Quantizer):
    name = "rvq"

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int):
        super().__init__(dim, num_codebooks, bits_per_codebook, codeword_dim=dim)

    def encode_chunk_size(self) -> int:
        # Stages run one after another, so only one N x K score matrix is alive at a time;
        # a cache-sized one (~4 MB) encodes 1.4x faster than a 128 MB one (M = 8, K = 256,
        # D = 128, one thread: 67k vs 47k vectors/s; scripts/bench.py).
        return max(1, (ENCODE_BUDGET_ELEMENTS >> 5) // self.codebook_size)

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        residual = x.clone()
        sq_norms = self.codebooks.pow(2).sum(-1)  # [M, K]
        codes = torch.empty(x.shape[0], self.num_codebooks, dtype=torch.long, device=x.device)
        for m in range(self.num_codebooks):
            idx = nearest_codeword(residual, self.codebooks[m], sq_norms[m])
            codes[:, m] = idx
            residual -= self.codebooks[m][idx]
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.selected_codewords(codes).sum(dim=1)
