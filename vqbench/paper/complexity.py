"""Encoding complexity in the paper's convention: the published Figs. 4c and 6b, reproduced exactly.

The paper (Vali & Bäckström, ICASSP 2023) plots log10 WMOPS computed by the authors' public
complexity calculator (repository "Additive-Residual-Product-Vector-Quantization-Methods",
`complexity.py`), not measured. Its convention, written out here in closed form:

- Unit: weighted operations to encode ONE vector, divided by 1e6 ("WMOPS" with no rate of
  vectors per second). ITU-T G.191 single-precision weights: add = mul = move = 1, branch = 4.
- A squared distance to one codeword costs 2D - 1 adds and D muls (3D - 1); it is computed
  directly, with no codeword-norm or lookup-table shortcut. argmin over n values costs n - 1 adds
  and n - 1 moves; picking the w smallest of n is w successive argmins over n, n - 1, ... values.
- RVQ and PVQ count M - 1 codebook searches, not M (the calculator's stage loop starts at 1);
  the published curves carry this, so it is kept. RVQ: each counted stage searches K codewords in
  D dims, moves the D-dim codeword, and all but the last update the residual (D adds); D(M - 1)
  adds form the output. PVQ: the same per counted subspace of D/M dims, plus 2D moves to split
  and concatenate.
- AVQ (beam search over the union of the M codebooks, width W): distances to all M K codewords
  and the W best; then for each later step i = 1..M-1: W beams rebuild their i-codeword sums
  (i W D moves and adds), 4 (C(M, i) - 1) for branches, each beam measures the (M - i) K unused
  codewords and keeps its W best, the W^2 candidates are formed (W^2 (D + 1) moves, i D W^2 adds)
  and their MSE evaluated (3 D W^2), then W survivors are selected (argmin at the last step).

Which settings reproduce the published points (every one of the 48, to rounding, checked in
tests/test_paper_complexity.py): M = 4 codebooks at every bitrate (K = 2^(bits/4)); Fig. 4c
(VQ-VAE latents) D = 64, W = 16 at every bitrate, including 12 bits where W exceeds K = 8 (the
calculator's own W <= K check would refuse that point, so the published one was computed
without it); Fig. 6b (SIFT) D = 128, W = min(64, K), i.e. 8, 16, 32 at 12, 16, 20 bits, then 64.
See `PUBLISHED_SETTINGS` and `published_setting`.

How this differs from vqbench's own count (`vqbench.metrics.complexity`): ours counts the code path
vqbench runs. For AVQ that is a lookup-table beam search: inner products <x, c> with all M K
codewords are computed once per vector (D MACs each) and every later beam step only adds table
entries (codeword norms and pairwise cross products, precomputed once per codebook update) and
selects with compares, so no D-dimensional work happens after the first step. The paper's
calculator recomputes D-dimensional residual distances for every beam and every candidate, and
counts the final MSE of all W^2 candidates, so its AVQ count is 24-39x ours at Fig. 4c's settings
and 36-97x at Fig. 6b's (it grows like W^2 D M where ours grows like W M K). For RVQ and PVQ the
paper's count is 1.8-2.3x ours: it spends 3D - 1 operations per codeword distance where ours
spends D multiply-accumulates plus one add (norms precomputed), and an add plus a move per
codeword in the argmin where ours spends one compare (weight 4), but it counts only M - 1
searches where ours counts all M.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from math import comb
from typing import Any

# figure -> (dim, num_codebooks, beam width, beam clipped to K?) reproducing the published values
PUBLISHED_SETTINGS: dict[str, dict[str, object]] = {
    "fig4c": {"dim": 64, "num_codebooks": 4, "beam_width": 16, "clip_beam_to_codebook_size": False},
    "fig6b": {"dim": 128, "num_codebooks": 4, "beam_width": 64, "clip_beam_to_codebook_size": True},
}


def _argmin_ops(n: int) -> int:
    """argmin over n values: n - 1 adds (compares) and n - 1 moves."""
    return 2 * (n - 1)


def _select_ops(n: int, w: int) -> int:
    """The w smallest of n values by w successive argmins over n, n - 1, ..., n - w + 1 values."""
    return 2 * (w * (n - 1) - w * (w - 1) // 2)


def _distance_ops(num_codewords: int, dim: float) -> float:
    """Squared distances to num_codewords codewords: (2 dim - 1) adds + dim muls each."""
    return num_codewords * (3 * dim - 1)


def _rvq_ops(M: int, K: int, D: int, W: int | None) -> float:
    stages = M - 1  # the calculator's stage loop runs over 1..M-1
    return stages * (_distance_ops(K, D) + _argmin_ops(K) + D) + max(stages - 1, 0) * D + stages * D


def _pvq_ops(M: int, K: int, D: int, W: int | None) -> float:
    d = D / M
    return 2 * D + (M - 1) * (_distance_ops(K, d) + _argmin_ops(K) + d)


def _avq_ops(M: int, K: int, D: int, W: int | None) -> float:
    ops = _distance_ops(M * K, D) + _select_ops(M * K, W) + W
    for i in range(1, M):
        ops += 2 * i * W * D  # rebuild each beam's sum of i codewords: moves + adds
        ops += 4 * (comb(M, i) - 1)  # branches
        ops += W * (_distance_ops((M - i) * K, D) + _select_ops((M - i) * K, W))
        ops += W * W * (D + 1)  # store the W^2 candidate tuples and their codewords
        ops += W * W * i * D  # candidate reconstructions
        ops += W * W * 3 * D  # their MSE: (2D - 1) adds + (D + 1) muls each
        ops += _argmin_ops(W * W) if i == M - 1 else _select_ops(W * W, W) + W
    return ops


@dataclass(frozen=True)
class PaperCount:
    """The calculator's count for one quantizer: ``ops(M, K, D, W)`` weighted operations per
    vector, and whether it searches a beam (then W, the beam width, is required)."""

    ops: Callable[[int, int, int, int | None], float]
    beam: bool = False


# The quantizers the paper's calculator covers, by name; any other (VQ, FSQ, a registered one)
# has no paper count.
PAPER_COUNTS: dict[str, PaperCount] = {"avq": PaperCount(_avq_ops, beam=True), "rvq": PaperCount(_rvq_ops),
                                       "pvq": PaperCount(_pvq_ops)}
QUANTIZERS = tuple(PAPER_COUNTS)


def paper_ops(quantizer_name: str, num_codebooks: int, bits_per_codebook: int, dim: int,
              beam_width: int | None = None) -> float:
    """Weighted operations per encoded vector, counted as the paper's calculator counts them."""
    M, D = int(num_codebooks), int(dim)
    if quantizer_name not in PAPER_COUNTS:
        raise ValueError(f"the paper's complexity convention covers {', '.join(QUANTIZERS)}, got {quantizer_name!r}")
    if M < 1 or D < 1 or not 1 <= int(bits_per_codebook) <= 30:
        raise ValueError(f"need num_codebooks >= 1, dim >= 1, bits_per_codebook in 1..30; got "
                         f"num_codebooks={num_codebooks}, dim={dim}, bits_per_codebook={bits_per_codebook}")
    count = PAPER_COUNTS[quantizer_name]
    W = None
    if count.beam:
        if beam_width is None or int(beam_width) < 1:
            raise ValueError(f"{quantizer_name} needs beam_width >= 1, got {beam_width!r}")
        W = int(beam_width)
    return float(count.ops(M, 2 ** int(bits_per_codebook), D, W))


def paper_wmops(quantizer_name: str, num_codebooks: int, bits_per_codebook: int, dim: int,
                beam_width: int | None = None) -> float:
    """The paper's WMOPS: weighted million operations to encode one vector (its Figs. 4c, 6b)."""
    return paper_ops(quantizer_name, num_codebooks, bits_per_codebook, dim, beam_width) / 1e6


def paper_log10_wmops(quantizer_name: str, num_codebooks: int, bits_per_codebook: int, dim: int,
                      beam_width: int | None = None) -> float:
    """log10 of `paper_wmops`, the quantity plotted in Figs. 4c and 6b."""
    wmops = paper_wmops(quantizer_name, num_codebooks, bits_per_codebook, dim, beam_width)
    if wmops <= 0:  # rvq with one codebook: the calculator counts no searched stage
        raise ValueError(f"the paper's convention counts no operations for {quantizer_name} with "
                         f"num_codebooks={num_codebooks}; log10 is undefined")
    return math.log10(wmops)


def published_setting(figure_name: str, quantizer_name: str, bits: int) -> dict[str, int | None]:
    """Arguments of `paper_wmops` for one published point of Fig. 4c or 6b (bits per vector)."""
    if figure_name not in PUBLISHED_SETTINGS:
        raise ValueError(f"no published complexity figure {figure_name!r}; known: {', '.join(PUBLISHED_SETTINGS)}")
    s = PUBLISHED_SETTINGS[figure_name]
    M = int(s["num_codebooks"])
    if bits % M:
        raise ValueError(f"{figure_name}: {bits} bits is not a multiple of the paper's {M} codebooks")
    k = bits // M
    beam = None
    if quantizer_name in PAPER_COUNTS and PAPER_COUNTS[quantizer_name].beam:
        beam = min(int(s["beam_width"]), 2**k) if s["clip_beam_to_codebook_size"] else int(s["beam_width"])
    return {"num_codebooks": M, "bits_per_codebook": k, "dim": int(s["dim"]), "beam_width": beam}


def paper_wmops_of(quantizer: Any) -> float | None:
    """`paper_wmops` of a built quantizer; None for one the paper's calculator does not cover (VQ)."""
    count = PAPER_COUNTS.get(quantizer.name)
    if count is None:
        return None
    return paper_wmops(quantizer.name, quantizer.num_codebooks, quantizer.bits_per_codebook, quantizer.dim,
                       getattr(quantizer, "beam_width", None) if count.beam else None)
