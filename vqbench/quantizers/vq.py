"""VQ: one codebook of K = 2^bits codewords of the full dimension D."""

from __future__ import annotations

import torch

from .base import Quantizer, nearest_codeword


class VQ(Quantizer):
    name = "vq"

    def __init__(self, dim: int, bits_per_codebook: int, num_codebooks: int = 1):
        if num_codebooks != 1:
            raise ValueError(f"vq uses exactly one codebook: quantizer.num_codebooks must be 1, got {num_codebooks}")
        super().__init__(dim, 1, bits_per_codebook, codeword_dim=dim)

    def _prepare_encode(self) -> None:
        self._sq_norms = self.codebooks.detach()[0].pow(2).sum(1)  # [K], once per encode call

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        return nearest_codeword(x, self.codebooks.detach()[0], self._sq_norms).unsqueeze(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebooks[0].index_select(0, codes[:, 0])
