"""AVQ's beam search as the paper's authors published it (``quantizer.search=authors``).

The authors' code (MHVali/Additive-Residual-Product-Vector-Quantization-Methods, additive_vq.py,
``AVQ.beam_searching``) searches differently from the textbook beam search in avq.py:

1. Start: the W codewords nearest to x over the union of the M codebooks are the W beams.
2. Each step, every beam *proposes* the W codewords of its still unused codebooks nearest to a
   remainder r, and its W children (the beam plus one proposal) are ranked by their true error
   ||x - s - c||^2 over all W * W children; the best W are the next beams (the last step keeps
   the best child). Orderings of the same set are not merged: two beams may hold one set.
3. The remainder. For a beam of t codewords with c_t the last one added, the published code
   computes ``remainder = x - c_t`` t times over, from the same input each time but the result
   of the previous pass: r = x - t * c_t, where x - (c_1 + ... + c_t) was clearly intended. The
   proposals of the second codeword are right (t = 1); from the third on they are the codewords
   near x - t * c_t, and the true error only ranks what was proposed.

The published search is reproduced here, the remainder included, because it is the search that
produced the paper's AVQ numbers: with the textbook search our VQ-VAE's AVQ lies 1-2 dB above the
paper's Fig. 4 where the flaw can act (16-36 bits, K > W), within 1 dB where it cannot
(results/paper/fig4_calibration.md). It is not a better search: with the same codebooks it finds
worse codes from M = 3 on (tests/test_avq_authors.py). Two details differ from the published
code, on purpose:

* When a beam's unused codebooks hold fewer than W codewords, it proposes all of them. The
  published code then also proposes codewords of codebooks the beam already used (their NaN
  distances sort last and the first W indices are taken), which can yield codes that use one
  codebook twice and another not at all: not an AVQ code of M * log2 K bits.
* Ties are broken by position (stable sorts: the lower codeword index, the earlier beam, the
  better-ranked proposal), where the published code's order of equal values is unspecified
  (torch.sort, and a np.unique that permutes the children).

Ranking uses the lookup tables of avq.py, never D-dimensional remainders: with q0[j] =
||x - c_j||^2 and cross[i, j] = 2<c_i, c_j>,

    ||x - t c_t - c_j||^2 = const + q0[j] + t * cross[c_t, j]     (the proposal score),
    ||x - s - c_j||^2     = T[j], T' = (T + cross[j*]) + (T[j*] - ||x - s||^2)   (the true error),

so a step costs two table rows per beam. ``authors_beam_search`` is the torch engine (any device,
the reference); avq_authors_kernel.py compiles the same arithmetic for the CPU.
"""

from __future__ import annotations

import torch

from ..metrics.complexity import ADD, COMPARE, MAC, MOVE, MUL, topk_ops


def first_smallest(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of each row (last dim), ascending, ties in index order."""
    vals, idx = values.sort(dim=-1, stable=True)
    return vals[..., :k], idx[..., :k]


def authors_beam_search(q0: torch.Tensor, x_sq: torch.Tensor, cross: torch.Tensor, num_codebooks: int,
                        beam_width: int) -> torch.Tensor:
    """Codes [n, M] (int64) by the published search from q0 [n, M*K] (||x - c_j||^2), x_sq [n]
    (||x||^2) and cross [M*K, M*K] (2<c_i, c_j>; its same-codebook blocks are never read)."""
    n, MK = q0.shape
    M, W = num_codebooks, beam_width
    K = MK // M
    dev = q0.device
    rows = torch.arange(n, device=dev).unsqueeze(1)
    # Start: the W nearest codewords over the union are the beams.
    err, last = first_smallest(q0, min(W, MK))  # [n, B]
    if M == 1:
        return last[:, :1]
    B = err.shape[1]
    codes = torch.zeros(n, B, M, dtype=torch.long, device=dev)
    codes.scatter_(2, (last // K).unsqueeze(2), (last % K).unsqueeze(2))
    used = torch.zeros(n, B, M, dtype=torch.bool, device=dev)
    used.scatter_(2, (last // K).unsqueeze(2), True)
    # T[b, j] = ||x - s_b - c_j||^2 (valid on the beam's unused codebooks).
    tables = (q0.unsqueeze(1) + cross[last]) + (err - x_sq.unsqueeze(1)).unsqueeze(2)
    for t in range(1, M):  # every beam holds t codewords
        proposals = min(W, (M - t) * K)
        score = q0.unsqueeze(1) + t * cross[last]  # ||x - t c_t - c_j||^2 - const, [n, B, MK]
        score = score.masked_fill(used.repeat_interleave(K, dim=2), float("inf"))
        _, prop = first_smallest(score, proposals)  # [n, B, P]
        child_err = tables.gather(2, prop).reshape(n, B * proposals)
        if t == M - 1:
            pick = child_err.argmin(dim=1, keepdim=True)  # the first best child
            child_err = child_err.gather(1, pick)
        else:
            child_err, pick = first_smallest(child_err, min(W, B * proposals))
        parent, new = pick // proposals, prop.reshape(n, B * proposals).gather(1, pick)
        codes = codes[rows, parent]
        codes.scatter_(2, (new // K).unsqueeze(2), (new % K).unsqueeze(2))
        if t == M - 1:
            return codes[:, 0]
        used = used[rows, parent]
        used.scatter_(2, (new // K).unsqueeze(2), True)
        # inf - inf (overflowed data) must stay +inf, not NaN.
        delta = (child_err - err.gather(1, parent)).nan_to_num(nan=float("inf"))
        tables = (tables[rows, parent] + cross[new]) + delta.unsqueeze(2)
        err, last, B = child_err, new, child_err.shape[1]
    raise AssertionError("unreachable")  # pragma: no cover


def authors_encode_ops(M: int, K: int, D: int, W: int) -> int:
    """Weighted operations per vector of the search above on its tables: the root table, the
    start's selection, and per step each beam's proposal scores (a multiply-add per codeword of
    its unused codebooks) and selection, the children's errors (a gather), the selection of the
    next beams and their tables (gather, cross-product row, error shift)."""
    ops = M * K * (D * MAC + 2 * ADD)  # <x, c> for every codeword, root table
    beams = min(W, M * K)
    ops += topk_ops(M * K, beams) + beams * M * K * (MOVE + 2 * ADD)  # the start and its tables
    for t in range(1, M):
        unused = (M - t) * K
        proposals = min(W, unused)
        ops += beams * (unused * (MUL + ADD) + topk_ops(unused, proposals))
        children = beams * proposals
        ops += children * MOVE
        if t == M - 1:
            ops += children * COMPARE
            break
        width = min(W, children)
        ops += topk_ops(children, width) + width * unused * (MOVE + 2 * ADD)
        beams = width
    return ops
