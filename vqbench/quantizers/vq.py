"""VQ: one codebook of K = 2^bits codewords of the full dimension D.

VQ is PVQ with a single subspace: it inherits PVQ's fit, initialisation, EMA targets and
operation count, and keeps a direct nearest-codeword encoder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..common.checks import ConfigError
from ..common.memory import codebook_terms
from .base import QuantizerConfig, nearest_codeword
from .pvq import PVQ


@dataclass
class VQConfig(QuantizerConfig):
    name: str = "vq"
    num_codebooks: int = 1  # always 1
    bits_per_codebook: int = 8


class VQ(PVQ):
    name = "vq"
    Config = VQConfig
    faiss_export = "pq"  # one subspace

    def __init__(self, dim: int, bits_per_codebook: int, num_codebooks: int = 1):
        self.check_config({"num_codebooks": num_codebooks, "bits_per_codebook": bits_per_codebook}, dim)
        super().__init__(dim, 1, bits_per_codebook)

    @classmethod
    def check_config(cls, qcfg: Mapping[str, Any], dim: int | None = None, dim_source: str = "data dimension") -> None:
        super().check_config(qcfg, dim, dim_source)
        if qcfg["num_codebooks"] != 1:
            raise ConfigError(f"quantizer=vq uses one codebook: quantizer.num_codebooks must be 1, "
                              f"got {qcfg['num_codebooks']}")

    @classmethod
    def memory_terms(cls, qcfg: Mapping[str, Any], dim: int) -> dict[str, float]:
        """Its codebook of full-dimension codewords, with Adam's copies."""
        return codebook_terms(int(qcfg["num_codebooks"]), 1 << int(qcfg["bits_per_codebook"]), dim)

    def _prepare_encode(self) -> None:
        self._sq_norms = self.codebooks.detach()[0].pow(2).sum(1)  # [K], once per encode call

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        return nearest_codeword(x, self.codebooks.detach()[0], self._sq_norms).unsqueeze(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebooks[0].index_select(0, codes[:, 0])
