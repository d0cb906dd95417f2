"""Known answers for what the quantizers' mutation pass still let through: the compiled AVQ
search run as plain Python against the torch reference (narrow beams, where the selection's heap,
duplicate merging and counting filter decide the codes), the chunk size's floor of one vector, and
the residual initialisation's nearest codeword."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from avq_engines import engine_pair

import vqbench.quantizers.avq as avq_module
from vqbench.quantizers import AVQ, RVQ, avq_kernel, avq_numba


@pytest.fixture
def python_kernel(monkeypatch):
    """engine="numba" runs the kernel's plain-Python twin (numba's py_func of every @njit function
    of avq_kernel): the same float32 arithmetic in the same order, but numpy checks every index,
    and nothing is compiled. An index past a buffer raises instead of reading stray memory."""
    for name, obj in list(vars(avq_kernel).items()):
        if hasattr(obj, "py_func"):
            monkeypatch.setattr(avq_kernel, name, obj.py_func)
    monkeypatch.setattr(avq_kernel, "_select_children", _checked(avq_kernel._select_children))
    monkeypatch.setattr(avq_numba, "_encode_rows", avq_kernel._encode_rows)


def _checked(select):
    """_select_children, then its contract checked by brute force: the selection holds the W best
    children with distinct codeword sets (each set at its best ordering), sorted best first, each
    with its set hash (parent's hash + the new codeword's key), and the filter is all zero again."""
    def run(tabs, unused, bhash, keys, cur, beams, step, K, sel_val, sel_par, sel_cw, sel_hash, occupied):
        count = select(tabs, unused, bhash, keys, cur, beams, step, K, sel_val, sel_par, sel_cw, sel_hash,
                       occupied)
        M, W = unused.shape[1], sel_val.shape[0]
        best: dict[int, float] = {}
        for p in range(cur, cur + beams):
            for cw in (int(unused[p, u]) * K + k for u in range(M - step) for k in range(K)):
                v, h = tabs[p * M * K + cw], int(bhash[p] + keys[cw])
                if v < np.inf:
                    best[h] = min(best.get(h, np.inf), v)
        if best:
            assert sel_val[:count].tolist() == sorted(best.values())[:W]
            assert len(set(sel_hash[:count].tolist())) == count
        assert 1 <= count <= W
        assert sel_hash[:count].tolist() == (bhash[sel_par[:count]] + keys[sel_cw[:count]]).tolist()
        assert not occupied.any()
        return count
    return run


# (M, bits, W): W = 1 and 2 (a heap of one or two), W below one parent's children (the heap
# evicts from the first parent on), W above them (duplicate sets met while the selection is
# still filling: M=3, K=2 has 4 children per parent at step 1, W=6), K=16 and K=32 (the
# vectorised group minimum, one group and two).
@pytest.mark.parametrize("M,bits,W", [(3, 2, 1), (3, 2, 2), (4, 2, 3), (4, 3, 5), (3, 1, 6), (5, 1, 4),
                                      (3, 4, 3), (2, 5, 2)])
def test_python_kernel_equals_torch_reference_on_narrow_beams(python_kernel, M, bits, W):
    """Continuous random data has no ties: the kernel's codes are the reference search's."""
    ref, fast = engine_pair(6, M, bits, W, seed=M * 100 + bits * 10 + W, smallest_scale=0.4)
    x = torch.randn(60, 6, generator=torch.Generator().manual_seed(W)) * 1.3
    assert fast.uses_compiled_engine()
    assert torch.equal(fast.encode(x), ref.encode(x))


def test_python_kernel_keeps_zero_codes_for_an_overflowed_vector(python_kernel):
    """A vector whose every distance is inf/NaN gets codes 0: each step goes on with codeword 0 of
    the first unused codebook, and the last keeps the parent's (initial, zero) code."""
    _, fast = engine_pair(4, 3, 2, 2, seed=1, smallest_scale=0.4)
    x = torch.tensor([[float("inf"), 0.0, 0.0, 0.0], [0.5, -0.2, 0.1, 0.3]])
    codes = fast.encode(x)
    assert codes[0].tolist() == [0, 0, 0]
    assert torch.equal(codes[1:], engine_pair(4, 3, 2, 2, seed=1, smallest_scale=0.4)[0].encode(x[1:]))


def test_encode_chunk_is_never_below_one_vector(monkeypatch):
    """Both engines' chunk sizes floor at one vector when a vector's tables exceed the budget."""
    monkeypatch.setattr(avq_module, "ENCODE_BUDGET_ELEMENTS", 16)
    assert AVQ(4, 4, 4, 2).encode_chunk_size() == 1  # compiled: (16 >> 2) // 64 = 0
    assert AVQ(4, 4, 4, 2, engine="torch").encode_chunk_size() == 1
    monkeypatch.setattr(avq_module, "ENCODE_BUDGET_ELEMENTS", 1 << 12)
    assert AVQ(4, 2, 2, 2).encode_chunk_size() == 128  # (4096 >> 2) // 8


def test_residual_init_subtracts_the_euclidean_nearest_codeword():
    """init_residuals_from_data: codebook m's rows are residuals x - c(x), c(x) the codeword of
    codebook m-1 nearest to x in Euclidean distance (so each row is one of the candidates
    computed here by brute force from the data)."""
    g = torch.Generator().manual_seed(0)
    data = torch.randn(40, 2, generator=g) * 3.0
    q = RVQ(2, 2, 3)
    q.init_from_data(data, torch.Generator().manual_seed(1))
    first, second = q.codebooks[0].detach(), q.codebooks[1].detach()
    assert all((data == row).all(1).any() for row in first)  # codebook 0: data rows
    residuals = data - first[torch.cdist(data, first).argmin(1)]
    for row in second:
        assert torch.isclose(residuals, row, atol=1e-6).all(1).any(), row
