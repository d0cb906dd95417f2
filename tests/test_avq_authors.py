"""The published AVQ search (quantizer.search=authors): both engines against a per-vector
transcription of the authors' additive_vq.py, and what the flaw in it does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqbench.common.checks import ConfigError
from vqbench.quantizers import AVQ, build_quantizer
from vqbench.quantizers.avq_authors import authors_encode_ops


def published_search(x: np.ndarray, C: np.ndarray, M: int, K: int, W: int) -> np.ndarray:
    """additive_vq.py's beam_searching for one vector, written out plainly in float64: beams are
    tuples of codeword indices into the union C [M*K, D]; a beam of t codewords proposes the W
    codewords of its unused codebooks nearest to x - t * (its last codeword), and the W * W
    children are ranked by their true error."""
    order = np.argsort(((x - C) ** 2).sum(1), kind="stable")[:W]
    beams = [[int(j)] for j in order]
    best = beams[0]
    for t in range(1, M):
        children = []
        for beam in beams:
            remainder = x - t * C[beam[-1]]
            used = {j // K for j in beam}
            free = [j for j in range(M * K) if j // K not in used]
            dist = np.array([((remainder - C[j]) ** 2).sum() for j in free])
            children += [beam + [free[r]] for r in np.argsort(dist, kind="stable")[:W]]
        mse = np.array([((x - C[child].sum(0)) ** 2).mean() for child in children])
        if t < M - 1:
            beams = [children[r] for r in np.argsort(mse, kind="stable")[:W]]
        else:
            best = children[int(np.argmin(mse))]
    codes = np.zeros(M, np.int64)
    for j in best:
        codes[j // K] = j % K
    return codes


def _avq(M: int, bits: int, W: int, D: int, engine: str, dtype=torch.float64, seed: int = 0) -> AVQ:
    q = AVQ(D, M, bits, W, engine=engine, search="authors").to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        q.codebooks.copy_(torch.randn(q.codebooks.shape, generator=g, dtype=dtype) / np.sqrt(M))
    return q


def _sse(q: AVQ, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    return (x - q.decode(codes)).pow(2).sum(1)


@pytest.mark.parametrize("engine", ["torch", "numba"])
@pytest.mark.parametrize("M,bits,W", [(2, 3, 4), (3, 2, 4), (4, 3, 4), (4, 2, 6), (5, 2, 3), (1, 3, 4)])
def test_engines_equal_the_published_search(engine, M, bits, W):
    D, K = 6, 1 << bits
    q = _avq(M, bits, W, D, engine)
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    C = q.codebooks.detach().reshape(M * K, D).numpy()
    expected = np.stack([published_search(v, C, M, K, W) for v in x.numpy()])
    np.testing.assert_array_equal(q.encode(x).numpy(), expected)


def test_the_flawed_remainder_is_what_the_search_uses():
    """From the third codeword on the proposals come from x - t * c_last; the textbook remainder
    x - (c_1 + ... + c_t) proposes other codewords, so a transcription with it disagrees."""
    M, bits, W, D = 4, 4, 3, 6
    K = 1 << bits
    q = _avq(M, bits, W, D, "torch")
    x = torch.randn(200, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    C = q.codebooks.detach().reshape(M * K, D).numpy()

    def textbook_remainder(v):
        order = np.argsort(((v - C) ** 2).sum(1), kind="stable")[:W]
        beams = [[int(j)] for j in order]
        for t in range(1, M):
            children = []
            for beam in beams:
                remainder = v - C[beam].sum(0)
                used = {j // K for j in beam}
                free = [j for j in range(M * K) if j // K not in used]
                dist = np.array([((remainder - C[j]) ** 2).sum() for j in free])
                children += [beam + [free[r]] for r in np.argsort(dist, kind="stable")[:W]]
            mse = np.array([((v - C[child].sum(0)) ** 2).mean() for child in children])
            beams = [children[r] for r in np.argsort(mse, kind="stable")[:W]]
        codes = np.zeros(M, np.int64)
        for j in beams[0]:
            codes[j // K] = j % K
        return codes

    ours = q.encode(x).numpy()
    fixed = np.stack([textbook_remainder(v) for v in x.numpy()])
    assert (ours != fixed).any(axis=1).mean() > 0.05


@pytest.mark.parametrize("bits", [3, 6])
def test_float32_engines_agree_at_the_fig4_shape(bits):
    """D = 64, M = 4, W = 16 (the paper's VQ-VAE): the compiled engine reproduces the torch one."""
    q_torch = _avq(4, bits, 16, 64, "torch", torch.float32, seed=3)
    q_numba = _avq(4, bits, 16, 64, "numba", torch.float32, seed=3)
    x = torch.randn(300, 64, generator=torch.Generator().manual_seed(4))
    codes = q_torch.encode(x)
    np.testing.assert_array_equal(codes.numpy(), q_numba.encode(x).numpy())
    # and decodes to the same error as the codes' own sum
    assert torch.allclose(_sse(q_torch, x, codes), _sse(q_numba, x, codes))


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_two_codebooks_equal_the_textbook_beam_search(engine):
    """With M = 2 the flaw cannot act (t = 1 only) and duplicates do not matter (the last step
    keeps one child): the published search finds the textbook search's codes."""
    q = _avq(2, 5, 8, 12, engine, torch.float64, seed=5)
    beam = AVQ(12, 2, 5, 8, engine=engine).to(torch.float64)
    beam.load_state_dict(q.state_dict())
    x = torch.randn(200, 12, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    np.testing.assert_array_equal(q.encode(x).numpy(), beam.encode(x).numpy())


def test_the_published_search_is_worse_than_the_textbook_one_from_four_codebooks():
    q = _avq(4, 6, 16, 32, "numba", torch.float32, seed=7)
    beam = AVQ(32, 4, 6, 16)
    beam.load_state_dict(q.state_dict())
    x = torch.randn(2000, 32, generator=torch.Generator().manual_seed(8)) * 0.5
    ours, textbook = _sse(q, x, q.encode(x)).mean(), _sse(beam, x, beam.encode(x)).mean()
    assert ours > textbook * 1.01


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_fewer_unused_codewords_than_the_width_still_give_valid_codes(engine):
    """K < W at the last step (12 bits: K = 8, W = 16): every codebook used exactly once, the
    codes in range, and the search equals the transcription (which proposes all K)."""
    M, bits, W, D = 4, 3, 16, 8
    q = _avq(M, bits, W, D, engine, seed=9)
    x = torch.randn(50, D, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    codes = q.encode(x)
    assert codes.shape == (50, M) and codes.min() >= 0 and codes.max() < (1 << bits)
    C = q.codebooks.detach().reshape(M * 8, D).numpy()
    expected = np.stack([published_search(v, C, M, 8, W) for v in x.numpy()])
    np.testing.assert_array_equal(codes.numpy(), expected)


def test_search_setting_is_checked_and_carried():
    with pytest.raises(ConfigError, match="quantizer.search must be one of"):
        build_quantizer({"name": "avq", "num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 2,
                         "search": "greedy"}, 4)
    q = build_quantizer({"name": "avq", "num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 2,
                         "search": "authors"}, 4)
    assert q.search == "authors" and "search=authors" in repr(q)
    assert build_quantizer({"name": "avq", "num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 2}, 4).search == "beam"


def test_operation_count_by_hand():
    # M=2, K=4, D=3, W=2: root 8*(3+2)=40; start topk(8,2)=8*4+2*4=40, tables 2*8*3=48;
    # t=1: unused 4, proposals 2: 2*(4*2 + topk(4,2)=16+8) = 64; children 4 moves + 4 compares*4 = 20
    assert authors_encode_ops(2, 4, 3, 2) == 40 + 40 + 48 + 64 + 4 + 16
    q = AVQ(3, 2, 2, 2, search="authors")
    assert q.encode_ops() == authors_encode_ops(2, 4, 3, 2)


def test_a_setting_added_later_at_its_default_keeps_older_records():
    """quantizer.search came after the first AVQ records: a config with search=beam is the same job
    as a record without the key (resume skips it, a checkpoint resumes); search=authors is not."""
    from vqbench.experiments.vqvae_state import comparable
    from vqbench.run.attempts import job_key

    old = {"seed": 0, "quantizer": {"name": "avq", "num_codebooks": 4, "bits_per_codebook": 6, "beam_width": 16}}
    beam = {**old, "quantizer": {**old["quantizer"], "search": "beam"}}
    authors = {**old, "quantizer": {**old["quantizer"], "search": "authors"}}
    assert job_key(beam) == job_key(old) != job_key(authors)
    assert comparable(beam) == comparable(old) != comparable(authors)


def test_pages_name_the_search():
    from vqbench.report.panels import PANELS, method_name

    run = {"quantizer": {"name": "avq"}, "optimizer": {"name": "nsvq"}}
    assert method_name(run) == "avq"
    assert method_name({**run, "quantizer": {"name": "avq", "search": "beam"}}) == "avq"
    assert method_name({**run, "quantizer": {"name": "avq", "search": "authors"}}) == "avq_authors"
    assert PANELS["fig4b"].compare["avq"] == "avq_authors" and PANELS["fig5"].compare["avq"] == "avq"


def test_the_option_presets_the_search():
    from vqbench.run.schema import option_defaults

    assert option_defaults("quantizer", "avq_authors") == {**option_defaults("quantizer", "avq"), "search": "authors"}


def test_pages_read_an_older_avq_record_at_the_default_search():
    from vqbench.common.provenance import fill_added_defaults

    old = {"quantizer": {"name": "avq", "bits_per_codebook": 6}, "seed": 0}
    assert fill_added_defaults(old)["quantizer"]["search"] == "beam" and "search" not in old["quantizer"]
    assert fill_added_defaults({**old, "quantizer": {"name": "avq", "search": "authors"}})["quantizer"]["search"] == "authors"
    assert "search" not in fill_added_defaults({"quantizer": {"name": "rvq"}})["quantizer"]  # RVQ has no search
