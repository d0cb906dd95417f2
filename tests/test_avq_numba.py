"""The compiled AVQ beam search (engine="numba") against the torch reference search."""

from __future__ import annotations

import itertools

import pytest
import torch
from avq_engines import engine_pair

from vqbench.quantizers import AVQ, avq_numba


@pytest.mark.parametrize("M,bits,W,dim", [
    (2, 3, 1, 8), (3, 2, 4, 6), (4, 4, 3, 16), (4, 5, 16, 32), (5, 6, 8, 24), (8, 8, 16, 128), (8, 8, 64, 64),
])
def test_numba_codes_equal_torch_reference(M, bits, W, dim):
    """Continuous random data has no ties: both engines must return the very same codes."""
    ref, fast = engine_pair(dim, M, bits, W, seed=M * 100 + bits * 10 + W)
    x = torch.randn(150, dim, generator=torch.Generator().manual_seed(W)) * 1.2
    assert fast.uses_compiled_engine() and not ref.uses_compiled_engine()
    codes = fast.encode(x)
    assert torch.equal(codes, ref.encode(x))
    assert codes.dtype == torch.long and codes.shape == (150, M)


def _exhaustive_codes(q: AVQ, x: torch.Tensor) -> torch.Tensor:
    K, M = q.codebook_size, q.num_codebooks
    tuples = torch.tensor(list(itertools.product(range(K), repeat=M)))
    recon = q.decode(tuples).detach().double()
    dist = torch.cdist(x.double(), recon)
    return tuples[dist.argmin(1)]


@pytest.mark.parametrize("M,bits", [(2, 2), (3, 2), (3, 1), (4, 1), (2, 4)])
def test_numba_with_wide_beam_equals_exhaustive_search(M, bits):
    """A beam as wide as the search space finds the best of all K^M code tuples."""
    K = 1 << bits
    _, q = engine_pair(5, M, bits, K**M * M, seed=M * 7 + bits)
    x = torch.randn(80, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(q.encode(x), _exhaustive_codes(q, x))


def test_threads_and_chunks_do_not_change_codes():
    ref, fast = engine_pair(32, 4, 4, 8, seed=3)
    x = torch.randn(301, 32, generator=torch.Generator().manual_seed(2))
    fast._prepare_encode()
    flat, sq_norms, cross = fast._tables
    x_sq = x.pow(2).sum(1)
    q0 = torch.addmm((x_sq.unsqueeze(1) + sq_norms), x, flat.t(), alpha=-2.0)
    one = avq_numba.beam_search(q0, x_sq, cross, fast._set_keys, 4, 8, threads=1)
    three = avq_numba.beam_search(q0, x_sq, cross, fast._set_keys, 4, 8, threads=3)
    assert torch.equal(one, three)
    assert torch.equal(fast.encode(x, chunk_size=17), ref.encode(x))


def test_tables_follow_every_codebook_change():
    """Cached tables are reused for unchanged codebooks and rebuilt after an optimizer step
    (in-place update) or a .data assignment."""
    ref, fast = engine_pair(16, 3, 4, 4, seed=5)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(6))
    fast.encode(x)
    tables = fast._tables
    fast.encode(x)
    assert fast._tables is tables  # same codebooks: no rebuild
    opt = torch.optim.Adam([fast.codebooks], lr=0.05)
    (x - fast.decode(fast.encode(x))).pow(2).sum(1).mean().backward()
    opt.step()  # in place (a step that leaves no two codewords equal: no ties)
    ref.codebooks.data = fast.codebooks.detach().clone()
    assert torch.equal(fast.encode(x), ref.encode(x))
    fast.codebooks.data = torch.randn_like(fast.codebooks)  # replaced storage
    ref.codebooks.data = fast.codebooks.detach().clone()
    assert torch.equal(fast.encode(x), ref.encode(x))


def test_float64_codebooks():
    ref, fast = engine_pair(12, 3, 3, 4, seed=8)
    ref.double()
    fast.double()
    x = torch.randn(50, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    assert torch.equal(fast.encode(x), ref.encode(x))


def test_engine_is_checked():
    with pytest.raises(ValueError, match="engine must be one of"):
        AVQ(8, 2, 2, 4, engine="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_numba_engine_refuses_cuda_codebooks():
    q = AVQ(8, 2, 2, 4, engine="numba").cuda()
    with pytest.raises(ValueError, match="CPU only"):
        q.encode(torch.randn(3, 8, device="cuda"))
