"""PVQ (product quantization): split D into M subspaces of D/M dims, one VQ per subspace.

x_hat = concat_m C_m[i_m], with i_m the nearest codeword to the m-th sub-vector.
"""

from __future__ import annotations

import torch

from .argmin import argmin_rows
from .base import Quantizer


class PVQ(Quantizer):
    name = "pvq"

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int):
        if num_codebooks < 1 or dim % num_codebooks != 0:
            raise ValueError(
                f"pvq splits the data dimension into equal subspaces: dimension {dim} "
                f"is not divisible by quantizer.num_codebooks={num_codebooks}"
            )
        super().__init__(dim, num_codebooks, bits_per_codebook, codeword_dim=dim // num_codebooks)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [N, M, D/M]."""
        return x.reshape(x.shape[0], self.num_codebooks, self.codeword_dim)

    def _prepare_encode(self) -> None:
        self._sq_norms = self.codebooks.detach().pow(2).sum(-1)  # [M, K], once per encode call

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        sub = self.split(x).transpose(0, 1).contiguous()  # [M, N, d]
        codebooks = self.codebooks.detach()
        scores = torch.baddbmm(self._sq_norms.unsqueeze(1), sub, codebooks.transpose(1, 2), alpha=-2.0)
        M, N, K = scores.shape
        return argmin_rows(scores.view(M * N, K)).view(M, N).t()  # [N, M]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.selected_codewords(codes).reshape(codes.shape[0], self.dim)
