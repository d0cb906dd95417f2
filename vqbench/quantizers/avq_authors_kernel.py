"""The published AVQ search (avq_authors.py) compiled with numba for CPU tensors.

Same tables and the same float arithmetic as the torch engine ``authors_beam_search``, one vector
at a time: each selection keeps a sorted list of at most W entries, filled by insertion in scan
order with a strict comparison, so equal values keep their scan order as the torch engine's
stable sorts do. All @njit functions stay in this file (numba's disk cache is keyed on a
function's own file; see avq_kernel.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _insert(vals, idx, count, v, j):
    """Insert (v, j) into the ascending list vals/idx[:count] of capacity len(vals); returns the
    new count. An entry equal to one held goes after it; a full list drops its largest."""
    cap = vals.shape[0]
    if count == cap:
        if not v < vals[cap - 1]:
            return count
        pos = cap - 1
    else:
        pos = count
        count += 1
    while pos > 0 and vals[pos - 1] > v:
        vals[pos] = vals[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    vals[pos] = v
    idx[pos] = j
    return count


@njit(cache=True, nogil=True)
def _propose(q0, i, cross, last, t, used, row, K, score, pv, pi):
    """The proposals of beam ``row``: its unused codebooks' codewords nearest to x - t c_last,
    ranked by q0[i, j] + t * cross[last, j], into pv/pi (ascending); returns how many."""
    M = used.shape[1]
    MK = M * K
    crow = np.uint64(last) * np.uint64(MK)
    score[0] = t  # t in the tables' float type: the product below stays in it, as torch's
    tf = score[0]
    count = 0
    for m in range(M):
        if used[row, m]:
            continue
        base = np.uint64(m * K)
        for k in range(np.uint64(K)):
            score[base + k] = q0[i, base + k] + tf * cross[crow + base + k]
        for k in range(K):
            j = m * K + k
            if count < pv.shape[0] or score[j] < pv[pv.shape[0] - 1]:
                count = _insert(pv, pi, count, score[j], j)
    return count


@njit(cache=True, nogil=True)
def _new_beam(tabs, cross, codes, used, errs, lasts, src, dst, cw, err, delta, K):
    """Beam ``dst`` = beam ``src`` (row of the other buffer) plus codeword ``cw``, with its table
    (parent table + cross row of cw) + delta."""
    M = used.shape[1]
    MK = np.uint64(M * K)
    for m in range(M):
        codes[dst, m] = codes[src, m]
        used[dst, m] = used[src, m]
    codes[dst, cw // K] = cw % K
    used[dst, cw // K] = True
    errs[dst] = err
    lasts[dst] = cw
    srow, drow, crow = np.uint64(src) * MK, np.uint64(dst) * MK, np.uint64(cw) * MK
    for j in range(MK):
        tabs[drow + j] = (tabs[srow + j] + cross[crow + j]) + delta


@njit(cache=True, nogil=True)
def authors_rows(q0, x_sq, cross, M, W, lo, hi, out):
    """The published search for vectors lo..hi-1, codes into out[lo:hi].

    q0 [n, M*K]: ||x - c_j||^2; x_sq [n]: ||x||^2; cross [M*K*M*K] (flat): 2<c_i, c_j>. Beams
    alternate between the halves of the buffers (rows 0..W-1 and W..2W-1); row 2W is the root,
    whose table is q0 itself and whose error is ||x||^2.
    """
    n, MK = q0.shape
    K = MK // M
    dt = q0.dtype
    inf = np.full(1, np.inf, dt)[0]
    tabs = np.empty((2 * W + 1) * MK, dt)
    codes = np.zeros((2 * W + 1, M), np.int64)
    used = np.zeros((2 * W + 1, M), np.bool_)
    errs = np.empty(2 * W + 1, dt)
    lasts = np.zeros(2 * W + 1, np.int64)
    score = np.empty(MK, dt)
    pv = np.empty(W, dt)  # one beam's proposals
    pi = np.empty(W, np.int64)
    cv = np.empty(W, dt)  # the kept children: error, and (beam slot * W + proposal rank)
    ci = np.empty(W, np.int64)
    child_cw = np.empty(2 * W * W, np.int64)  # proposal codeword of (beam slot, rank)
    root = 2 * W
    for i in range(lo, hi):
        for j in range(MK):
            tabs[root * MK + j] = q0[i, j]
        for m in range(M):
            codes[root, m] = 0
            used[root, m] = False
        errs[root] = x_sq[i]
        # Start: the W nearest codewords over the union.
        count = 0
        for j in range(MK):
            if count < W or q0[i, j] < pv[W - 1]:
                count = _insert(pv, pi, count, q0[i, j], j)
        if M == 1:
            out[i, 0] = pi[0]
            continue
        for b in range(count):
            delta = pv[b] - x_sq[i]
            if delta != delta:
                delta = inf
            _new_beam(tabs, cross, codes, used, errs, lasts, root, b, pi[b], pv[b], delta, K)
        beams, cur = count, 0
        for t in range(1, M):
            kept = 0
            best, best_slot = inf, -1
            for b in range(cur, cur + beams):
                props = _propose(q0, i, cross, lasts[b], t, used, b, K, score, pv, pi)
                for r in range(props):
                    slot = b * W + r
                    child_cw[slot] = pi[r]
                    v = tabs[np.uint64(b) * np.uint64(MK) + np.uint64(pi[r])]
                    if t == M - 1:
                        if v < best or best_slot < 0:
                            best, best_slot = v, slot
                    elif kept < W or v < cv[W - 1]:
                        kept = _insert(cv, ci, kept, v, slot)
            if t == M - 1:
                b = best_slot // W
                for m in range(M):
                    out[i, m] = codes[b, m]
                cw = child_cw[best_slot]
                out[i, cw // K] = cw % K
                break
            nxt = W - cur
            for c in range(kept):
                b = ci[c] // W
                delta = cv[c] - errs[b]
                if delta != delta:
                    delta = inf
                _new_beam(tabs, cross, codes, used, errs, lasts, b, nxt + c, child_cw[ci[c]], cv[c], delta, K)
            beams, cur = kept, nxt
