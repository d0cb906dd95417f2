"""PVQ (product quantization): split D into M subspaces of D/M dims, one VQ per subspace.

x_hat = concat_m C_m[i_m], with i_m the nearest codeword to the m-th sub-vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..common.checks import ConfigError
from ..common.memory import codebook_terms
from ..metrics.complexity import nearest_codeword_ops
from .argmin import argmin_rows
from .base import Quantizer, QuantizerConfig, init_subspaces_from_data
from .kmeans import fit_subspaces_kmeans


@dataclass
class PVQConfig(QuantizerConfig):
    name: str = "pvq"


class PVQ(Quantizer):
    name = "pvq"
    Config = PVQConfig
    faiss_export = "pq"

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int):
        self.check_config({"num_codebooks": num_codebooks, "bits_per_codebook": bits_per_codebook}, dim)
        super().__init__(dim, num_codebooks, bits_per_codebook, codeword_dim=dim // num_codebooks)

    @classmethod
    def check_config(cls, qcfg: Mapping[str, Any], dim: int | None = None, dim_source: str = "data dimension") -> None:
        super().check_config(qcfg, dim, dim_source)
        M = qcfg["num_codebooks"]
        if dim is not None and dim % M != 0:
            source = "" if dim_source == "data dimension" else f" ({dim_source})"
            raise ConfigError(f"quantizer=pvq: data dimension {dim}{source} is not divisible by "
                              f"quantizer.num_codebooks={M}")

    @classmethod
    def memory_terms(cls, qcfg: Mapping[str, Any], dim: int) -> dict[str, float]:
        """The codebooks of dim / M-dimensional sub-codewords, with Adam's copies."""
        M = int(qcfg["num_codebooks"])
        return codebook_terms(M, 1 << int(qcfg["bits_per_codebook"]), dim // M if M <= dim else dim)

    @property
    def independent_parts(self) -> int:
        return self.num_codebooks

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

    def encode_ops(self) -> int:
        return self.num_codebooks * nearest_codeword_ops(self.codebook_size, self.codeword_dim)

    def fit_kmeans(self, x: np.ndarray, lloyd_iterations: int, alternations: int, seed: int,
                   progress: bool) -> dict[str, float]:
        fit_subspaces_kmeans(self, x, lloyd_iterations, seed, progress)
        return {}

    def init_from_data(self, data: torch.Tensor, generator: torch.Generator) -> None:
        init_subspaces_from_data(self, data, generator)

    def ema_targets(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.split(x)
