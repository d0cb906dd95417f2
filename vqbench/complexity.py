"""Encoding complexity per vector, counted on the code path vqbench actually runs.

Weights follow ITU-T G.191 (STL basic operators): add = sub = mul = multiply-accumulate
= move = 1, compare/branch = 4. Reported as weighted operations per encoded vector and
in millions (the paper's "WMOPS" axis). Work done once per codebook update (codeword
norms, AVQ's cross-product table) is amortised over many vectors and not counted.
"""

from __future__ import annotations

import math

from .quantizers import AVQ, PVQ, RVQ, VQ, Quantizer

ADD = MUL = MAC = MOVE = 1
COMPARE = 4


def nearest_codeword_ops(k: int, d: int) -> int:
    """argmin_k ||c_k||^2 - 2<x, c_k>: d MACs and one add per codeword, one compare each."""
    return k * (d * MAC + ADD) + k * COMPARE


def topk_ops(candidates: int, k: int) -> int:
    """Selection of the k best of `candidates`: one compare each, plus sorting the k."""
    return candidates * COMPARE + int(k * max(1.0, math.log2(max(k, 2)))) * COMPARE


def encode_ops(quantizer: Quantizer) -> int:
    """Weighted operations to encode one vector with `quantizer`."""
    M, K, D = quantizer.num_codebooks, quantizer.codebook_size, quantizer.dim
    if isinstance(quantizer, VQ):
        return nearest_codeword_ops(K, D)
    if isinstance(quantizer, PVQ):
        return M * nearest_codeword_ops(K, D // M)
    if isinstance(quantizer, RVQ):
        # per stage: nearest codeword, then the residual update (D subs + D moves)
        return M * (nearest_codeword_ops(K, D) + D * (ADD + MOVE))
    if isinstance(quantizer, AVQ):
        return _avq_ops(M, K, D, quantizer.beam_width)
    raise TypeError(f"no complexity model for {type(quantizer).__name__}")


def _avq_ops(M: int, K: int, D: int, W: int) -> int:
    ops = M * K * (D * MAC + 2 * ADD)  # <x, c> for every codeword, root table
    beams = 1
    for step in range(M):
        unused = M - step
        candidates = beams * unused * K
        if step == M - 1:
            ops += candidates * COMPARE  # argmin over the last tables
            break
        pool = min(W * (step + 1), candidates)
        width = min(W, pool)
        ops += topk_ops(candidates, pool)
        if step > 0 and pool > width:  # hash, sort and drop repeated sets, pick the width best
            ops += pool * ADD + topk_ops(pool, pool) + topk_ops(pool, width)
        # child tables: gather (move) + cross-product row (add) + error shift (add)
        ops += width * (unused - 1) * K * (MOVE + 2 * ADD)
        beams = width
    return ops


def encode_wmops(quantizer: Quantizer) -> float:
    """Weighted million operations per encoded vector."""
    return encode_ops(quantizer) / 1e6


def complexity_metrics(quantizer: Quantizer) -> dict[str, float]:
    """Encoding cost per vector for a run's metrics: our count (`encode_wmops`, the code path
    vqbench runs) and the paper's convention (`encode_wmops_paper`, vqbench.paper.complexity)."""
    from .paper.complexity import paper_wmops_of

    out = {"encode_wmops": encode_wmops(quantizer)}
    paper = paper_wmops_of(quantizer)
    if paper is not None:
        out["encode_wmops_paper"] = paper
    return out
