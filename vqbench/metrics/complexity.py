"""Encoding complexity per vector, counted on the code path vqbench actually runs.

Weights follow ITU-T G.191 (STL basic operators): add = sub = mul = multiply-accumulate
= move = 1, compare/branch = 4. Reported as weighted operations per encoded vector and
in millions (the paper's "WMOPS" axis). Work done once per codebook update (codeword
norms, AVQ's cross-product table) is amortised over many vectors and not counted.
Each quantizer counts its own encoder (``Quantizer.encode_ops``) with the helpers here.
"""

from __future__ import annotations

import math
from typing import Protocol


class CountsItsOps(Protocol):
    """A quantizer: it counts its own encoder (``Quantizer.encode_ops``)."""

    def encode_ops(self) -> int: ...

ADD = MUL = MAC = MOVE = 1
COMPARE = 4


def nearest_codeword_ops(k: int, d: int) -> int:
    """argmin_k ||c_k||^2 - 2<x, c_k>: d MACs and one add per codeword, one compare each."""
    return k * (d * MAC + ADD) + k * COMPARE


def topk_ops(candidates: int, k: int) -> int:
    """Selection of the k best of `candidates`: one compare each, plus sorting the k."""
    return candidates * COMPARE + int(k * max(1.0, math.log2(max(k, 2)))) * COMPARE


def encode_ops(quantizer: CountsItsOps) -> int:
    """Weighted operations to encode one vector with `quantizer`."""
    return quantizer.encode_ops()


def encode_wmops(quantizer: CountsItsOps) -> float:
    """Weighted million operations per encoded vector."""
    return encode_ops(quantizer) / 1e6
