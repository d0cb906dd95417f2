"""Known answers for the quantizers' counts, sizes and defaults (what the mutation pass found
untested): operation counts worked out by hand, memory terms, budgets, FSQ level tables, the
k-means seeds and iterations, and the beam searches against exhaustive search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vqbench.common.checks import ConfigError
from vqbench.common.memory import ADAM_COPIES, F32
from vqbench.quantizers import AVQ, PVQ, RVQ, QuantizerConfig
from vqbench.quantizers.base import _sample
from vqbench.quantizers.fsq import FSQQuantizer, levels_for_bits
from vqbench.quantizers.kmeans import fit_subspaces_kmeans, lloyd
from vqbench.quantizers.vq import VQConfig


def test_avq_operation_count_by_hand():
    # M=2, K=4, D=3, W=2. Root table: 8 codewords * (3 MACs + 2 adds) = 40. Step 0: top-2 of 8
    # children = 8*4 + 2*1*4 = 40; two child tables of one block: 2*1*4*(move + 2 adds) = 24.
    # Last step: argmin over 2*1*4 = 8 entries = 32.
    assert AVQ(3, 2, 2, 2).encode_ops() == 40 + 40 + 24 + 32
    # M=3, K=4, D=2, W=2: root 12*4 = 48; step 0: top-2 of 12 = 48 + 8, tables 2*2*4*3 = 48;
    # step 1: pool 4 of 16 = 64 + 4*2*4, then hash 4 + sort 4 (16 + 32) + top-2 of 4 (16 + 8),
    # tables 2*1*4*3 = 24; last: 2*1*4 compares = 32.
    assert AVQ(2, 3, 2, 2).encode_ops() == 48 + 56 + 48 + 96 + 76 + 24 + 32


def test_avq_memory_terms(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    terms = AVQ.memory_terms({"num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 3}, 5)
    codebooks = 2 * 4 * 5 * F32 * ADAM_COPIES
    assert terms == {"quantizer.num_codebooks=2": codebooks + 8.0 ** 2 * F32,
                     "quantizer.beam_width=3": 3 * 2 * 4 * F32 * 2 * 2}


def test_avq_encode_chunks_follow_the_budget():
    # compiled: only the root tables per chunk, (2^25 / 4) / (M K); torch: W M K per vector, 2^25 / 16
    assert AVQ(8, 4, 8, 16).encode_chunk_size() == 8192
    assert AVQ(8, 4, 8, 16, engine="torch").encode_chunk_size() == 128
    assert AVQ(8, 4, 11, 512, engine="torch").encode_chunk_size() == 1  # never below one vector


@pytest.mark.parametrize("search", ["beam", "authors"])
@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_a_beam_wide_enough_is_exhaustive(engine, search):
    """M=3, K=4: 48 sets of two codewords; a beam of 64 keeps them all (the textbook search merges
    orderings; the published one proposes every codeword), so both find the best of the 64 codes."""
    M, K, D = 3, 4, 5
    q = AVQ(D, M, 2, 64, engine=engine, search=search).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        q.codebooks.copy_(torch.randn(M, K, D, generator=g, dtype=torch.float64))
    x = torch.randn(300, D, generator=g, dtype=torch.float64) * 2
    combos = torch.tensor(list(itertools.product(range(K), repeat=M)))
    errors = torch.cdist(x, q.decode(combos).detach())  # [n, K^M]
    best = combos[errors.argmin(dim=1)]
    assert torch.equal(q.encode(x), best)


def test_fsq_level_tables():
    assert levels_for_bits(3) == (8,) and levels_for_bits(4) == (16,) and levels_for_bits(6) == (8, 8)
    assert levels_for_bits(7) == (16, 8) and levels_for_bits(8) == (16, 16) and levels_for_bits(11) == (16, 16, 8)
    for bits in (1, 2, 5):
        with pytest.raises(ValueError, match=f"no level table for {bits} bits"):
            levels_for_bits(bits)


def test_fsq_operation_count_and_decode_dtype():
    # per channel: bound (add, tanh = 4, mul, add), round (move), index (add) = 9 ops
    assert FSQQuantizer(3, (8, 8, 8)).encode_ops() == 3 * 9
    assert FSQQuantizer(16, (8, 8)).encode_ops() == 16 * 2 + 2 * 9  # plus the projection's MACs
    q = FSQQuantizer(16, (8, 8)).double()
    assert q.decode(torch.zeros(2, 2, dtype=torch.long)).dtype == torch.float64


def test_defaults_and_integer_bits():
    assert QuantizerConfig().num_codebooks == 4  # the paper's M
    assert VQConfig().bits_per_codebook == 8 and VQConfig().num_codebooks == 1
    with pytest.raises(ConfigError, match="quantizer.bits_per_codebook must be an integer"):
        RVQ.check_config({"num_codebooks": 2, "bits_per_codebook": 3.5}, 4)


def test_codebooks_start_near_the_origin_and_resize_to_two():
    q = AVQ(64, 4, 8, 1)
    assert abs(float(q.codebooks.detach().std()) - 0.01) < 0.0005
    q.resize_codebooks(2)
    assert q.codebook_size == 2 and q.codebooks.shape == (4, 2, 64)
    with pytest.raises(ValueError, match="codebook_size must be >= 2"):
        q.resize_codebooks(1)


def test_data_init_samples_at_most_64_vectors_per_codeword():
    q = PVQ(4, 2, 2)  # K = 4: at most 256 sampled vectors
    g = torch.Generator().manual_seed(0)
    assert _sample(q, torch.randn(1000, 4), g).shape == (256, 4)
    assert _sample(q, torch.randn(10, 4), g).shape == (10, 4)


def test_lloyd_runs_the_iterations_asked_and_subspaces_use_their_own_seed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 4)).astype(np.float32)
    assert not np.allclose(lloyd(x, 16, 1, 0), lloyd(x, 16, 25, 0))
    q = PVQ(4, 2, 4)
    fit_subspaces_kmeans(q, x, 5, 7, progress=False)
    for m in range(2):  # subspace m: k-means seeded seed + m
        np.testing.assert_array_equal(q.codebooks[m].detach().numpy(), lloyd(x[:, 2 * m:2 * m + 2], 16, 5, 7 + m))
