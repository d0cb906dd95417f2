"""The compiled kernels of the AVQ beam search (numba; run by avq_numba.beam_search).

Instead of the reference's top-k over all W * U * K children, every vector keeps a bounded
selection of W candidates: a child is looked at only when it beats the current W-th distance
(parents are scanned best first, so the bound tightens fast), and set duplicates are merged
by the 64-bit set hash the reference uses (sum of per-codeword random keys). A vectorised
minimum over groups of 16 table entries skips most entries without a branch each. Hot loops
index with uint64 offsets: numba skips the negative-index wraparound for unsigned indices,
which lets LLVM vectorise the table additions (a 20x difference).

Each of a vector's M steps runs ``_select_children`` (the W best children with distinct sets)
and ``_child_tables`` (their codes and tables); the last keeps one child (``_best_child``).
numba inlines them (inline="always"; as calls: 2-3% slower). All @njit functions stay in this
file: numba's disk cache (cache=True) is invalidated by the mtime of a function's own file,
not its callees', so a kernel split over modules could run a stale callee.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def _min16(a, start):
    """min(a[start:start + 16]) (uint64 start), unrolled so LLVM makes it one vector reduction.
    fastmath only permits reordering the reduction; a minimum of floats is exact in any order
    (NaNs aside, which no selection keeps anyway)."""
    m = a[start]
    for k in range(1, 16):
        m = min(m, a[start + np.uint64(k)])
    return m


@njit(cache=True, nogil=True)
def _group_min(a, start, size):
    """min(a[start:start + size]): 16 entries vectorised, or a plain loop for K < 16."""
    if size == 16:
        return _min16(a, start)
    m = a[start]
    for k in range(np.uint64(1), size):
        m = min(m, a[start + k])
    return m


FILTER_MASK = 4095  # counting filter over set hashes: 4096 slots


@njit(cache=True, nogil=True)
def _sift_down(pos, count, v, p, c, h, sel_val, sel_par, sel_cw, sel_hash):
    """Place the entry (v, p, c, h) at pos or below it in the max-heap on distance sel_val[:count],
    moving larger children up (the entry's own slot at pos is overwritten)."""
    while True:
        child = 2 * pos + 1
        if child >= count:
            break
        if child + 1 < count and sel_val[child + 1] > sel_val[child]:
            child += 1
        if not sel_val[child] > v:
            break
        sel_val[pos] = sel_val[child]
        sel_par[pos] = sel_par[child]
        sel_cw[pos] = sel_cw[child]
        sel_hash[pos] = sel_hash[child]
        pos = child
    sel_val[pos] = v
    sel_par[pos] = p
    sel_cw[pos] = c
    sel_hash[pos] = h


@njit(cache=True, nogil=True)
def _heapify(count, sel_val, sel_par, sel_cw, sel_hash):
    """Arrange the selection as a max-heap on distance (root: the largest)."""
    for start in range(count // 2 - 1, -1, -1):
        _sift_down(start, count, sel_val[start], sel_par[start], sel_cw[start], sel_hash[start],
                   sel_val, sel_par, sel_cw, sel_hash)


@njit(cache=True, nogil=True)
def _sort_selection(count, sel_val, sel_par, sel_cw, sel_hash):
    """Insertion sort by (distance, parent): beams best first, as the reference's sorted top-k."""
    for a in range(1, count):
        v, p, c, h = sel_val[a], sel_par[a], sel_cw[a], sel_hash[a]
        b = a - 1
        while b >= 0 and (sel_val[b] > v or (sel_val[b] == v and sel_par[b] > p)):
            sel_val[b + 1] = sel_val[b]
            sel_par[b + 1] = sel_par[b]
            sel_cw[b + 1] = sel_cw[b]
            sel_hash[b + 1] = sel_hash[b]
            b -= 1
        sel_val[b + 1] = v
        sel_par[b + 1] = p
        sel_cw[b + 1] = c
        sel_hash[b + 1] = h


@njit(cache=True, nogil=True, inline="always")
def _best_child(tabs, unused, bcodes, cur, beams, K, i, out):
    """Last step: only the best child matters; writes its codes into out[i] (the best parent's
    codes with the one codeword that completes them)."""
    M = bcodes.shape[1]
    uK = np.uint64(K)
    uMK = np.uint64(M * K)
    G = np.uint64(min(K, 16))  # group size of the vectorised minimum that gates the offers
    groups = uK // G
    best = np.float32(np.inf)
    best_row = cur
    best_cw = -1
    for p in range(cur, cur + beams):
        row = np.uint64(p) * uMK
        base = row + np.uint64(unused[p, 0]) * uK
        for g in range(groups):
            gb = base + g * G
            if _group_min(tabs, gb, G) < best:
                for k in range(G):
                    v = tabs[gb + k]
                    if v < best:
                        best = v
                        best_row = p
                        best_cw = np.int64(gb + k - row)
    for m in range(M):
        out[i, m] = bcodes[best_row, m]
    if best_cw >= 0:  # an all-+inf table (overflowed data) keeps the parent's codes
        out[i, best_cw // K] = best_cw % K


# 79 lines, on purpose: taking the offer of one child (duplicate check, insertion, heap) out
# into its own @njit function, inlined or called, made the whole encoder 7-11% (inlined) or
# 20% (called) slower on 3,000 vectors, M=8, K=256, W=16.
@njit(cache=True, nogil=True, inline="always")
def _select_children(tabs, unused, bhash, keys, cur, beams, step, K, sel_val, sel_par, sel_cw, sel_hash,
                     occupied):
    """Select the W best children with distinct codeword sets into sel_* (sorted best first) and
    return how many: a max-heap on distance once W are held (the root is the bound to beat), and
    a counting filter on the set hashes (``occupied``, all zero again on return) so that only a
    possible duplicate costs a scan of the selection."""
    M = unused.shape[1]
    W = sel_val.shape[0]
    U = M - step
    uK = np.uint64(K)
    uMK = np.uint64(M * K)
    G = np.uint64(min(K, 16))
    groups = uK // G
    inf = np.float32(np.inf)
    count = 0
    thresh = inf
    for p in range(cur, cur + beams):
        row = np.uint64(p) * uMK
        ph = bhash[p]
        for u in range(U):
            base = row + np.uint64(unused[p, u]) * uK
            for g in range(groups):
                gb = base + g * G
                if not _group_min(tabs, gb, G) < thresh:
                    continue
                for k in range(G):
                    v = tabs[gb + k]
                    if not v < thresh:
                        continue
                    cw = np.int64(gb + k - row)
                    h = ph + keys[cw]
                    slot = h & FILTER_MASK
                    pos = -1
                    if step > 0 and occupied[slot] > 0:  # this set reached before?
                        for t in range(count):
                            if sel_hash[t] == h:
                                pos = t
                                break
                    if pos >= 0:  # keep the better ordering of the set
                        if not v < sel_val[pos]:
                            continue
                        sel_par[pos] = p
                        sel_cw[pos] = cw
                        if count < W:
                            sel_val[pos] = v
                            continue
                    elif count < W:
                        sel_val[count] = v
                        sel_par[count] = p
                        sel_cw[count] = cw
                        sel_hash[count] = h
                        occupied[slot] += 1
                        count += 1
                        if count == W:
                            _heapify(count, sel_val, sel_par, sel_cw, sel_hash)
                            thresh = sel_val[0]
                        continue
                    else:  # replace the root, the worst kept
                        occupied[sel_hash[0] & FILTER_MASK] -= 1
                        occupied[slot] += 1
                        pos = 0
                        sel_par[0] = p
                        sel_cw[0] = cw
                        sel_hash[0] = h
                    # sift the (smaller) distance v down from pos
                    _sift_down(pos, count, v, sel_par[pos], sel_cw[pos], sel_hash[pos],
                               sel_val, sel_par, sel_cw, sel_hash)
                    thresh = sel_val[0]
    for t in range(count):
        occupied[sel_hash[t] & FILTER_MASK] -= 1  # all counters back to zero
    if count == 0:  # every distance +inf or NaN (overflowed data): go on with any child
        cw = unused[cur, 0] * K
        count = 1
        sel_val[0] = inf
        sel_par[0] = cur
        sel_cw[0] = cw
        sel_hash[0] = bhash[cur] + keys[cw]
    _sort_selection(count, sel_val, sel_par, sel_cw, sel_hash)
    return count


@njit(cache=True, nogil=True, inline="always")
def _child_tables(tabs, cross, unused, bcodes, berr, bhash, step, K, count, nxt, sel_val, sel_par, sel_cw,
                  sel_hash):
    """The selected children become beams nxt..nxt+count-1: codes, error, set hash, unused
    codebooks and table = (parent's table + cross row of the new codeword) + (child - parent
    error), on the child's unused codebooks' blocks only."""
    M = unused.shape[1]
    U = M - step
    uK = np.uint64(K)
    uMK = np.uint64(M * K)
    inf = np.float32(np.inf)
    for c in range(count):
        p = sel_par[c]
        cw = sel_cw[c]
        m_new = cw // K
        r = nxt + c
        delta = sel_val[c] - berr[p]
        if delta != delta:  # inf - inf: keep +inf, as the reference's nan_to_num
            delta = inf
        for m in range(M):
            bcodes[r, m] = bcodes[p, m]
        bcodes[r, m_new] = cw % K
        berr[r] = sel_val[c]
        bhash[r] = sel_hash[c]
        prow = np.uint64(p) * uMK
        rrow = np.uint64(r) * uMK
        crow = np.uint64(cw) * uMK
        jj = 0
        for u in range(U):
            m = unused[p, u]
            if m == m_new:
                continue
            unused[r, jj] = m
            jj += 1
            base = np.uint64(m) * uK
            for k in range(uK):
                j = base + k
                tabs[rrow + j] = (tabs[prow + j] + cross[crow + j]) + delta


@njit(cache=True, nogil=True)
def _encode_rows(q0, x_sq, cross, keys, M, W, lo, hi, out):
    """Beam search of vectors lo..hi-1; writes their codes into out[lo:hi].

    q0 [n, M*K]: ||x - c_j||^2; x_sq [n]: ||x||^2; cross [M*K*M*K] (flat): 2<c_j, c_j'>;
    keys [M*K]: set-hash keys. Beam b of buffer h (h = 0, W alternate between steps) owns row
    h + b of tabs [2W, M*K] (flat; its table, valid on its unused codebooks' blocks) and of
    unused/bcodes [2W, M], berr/bhash [2W]. The selection (sel_*) holds up to W children.
    """
    n, MK = q0.shape
    K = MK // M
    uMK = np.uint64(MK)
    tabs = np.empty(2 * W * MK, q0.dtype)
    unused = np.empty((2 * W, M), np.int64)
    bcodes = np.empty((2 * W, M), np.int64)
    berr = np.empty(2 * W, q0.dtype)
    bhash = np.empty(2 * W, np.int64)
    sel_val = np.empty(W, q0.dtype)
    sel_par = np.empty(W, np.int64)
    sel_cw = np.empty(W, np.int64)
    sel_hash = np.empty(W, np.int64)
    occupied = np.zeros(FILTER_MASK + 1, np.int32)
    for i in range(lo, hi):
        for j in range(uMK):
            tabs[j] = q0[i, j]
        for m in range(M):
            unused[0, m] = m
            bcodes[0, m] = 0
        berr[0] = x_sq[i]
        bhash[0] = 0
        beams = 1
        cur = 0
        for step in range(M - 1):
            count = _select_children(tabs, unused, bhash, keys, cur, beams, step, K,
                                     sel_val, sel_par, sel_cw, sel_hash, occupied)
            nxt = W - cur
            _child_tables(tabs, cross, unused, bcodes, berr, bhash, step, K, count, nxt,
                          sel_val, sel_par, sel_cw, sel_hash)
            beams = count
            cur = nxt
        _best_child(tabs, unused, bcodes, cur, beams, K, i, out)
