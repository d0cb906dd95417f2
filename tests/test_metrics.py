"""Metrics and the Gaussian rate-distortion bound against closed-form answers."""

import math

import numpy as np
import pytest
import torch

from vqbench.metrics.complexity import encode_ops
from vqbench.metrics.rate_distortion import gap_db, gaussian_rd_distortion
from vqbench.metrics.vectors import code_statistics, codebook_perplexity, reconstruction_error, snr_db
from vqbench.quantizers import AVQ, PVQ, RVQ, VQ


def test_rd_bound_equal_eigenvalues_is_closed_form():
    # N(0, I_n): D(R) = n 2^(-2R/n)
    assert gaussian_rd_distortion(np.ones(4), 8) == pytest.approx(4 * 2 ** (-4), rel=1e-9)
    assert gaussian_rd_distortion(np.ones(64), 0) == pytest.approx(64)


def test_rd_bound_water_filling_drops_weak_components():
    # water level 0.5: R = 1/2 log2(4/0.5) + 1/2 log2(1/0.5) = 2 bits, D = 0.5 + 0.5 + 0.01
    assert gaussian_rd_distortion(np.array([4.0, 1.0, 0.01]), 2.0) == pytest.approx(1.01, rel=1e-9)


def test_rd_bound_rejects_bad_input():
    with pytest.raises(ValueError):
        gaussian_rd_distortion(np.array([1.0, -1.0]), 2)
    with pytest.raises(ValueError):
        gaussian_rd_distortion(np.ones(3), -1)


def test_gap_db():
    assert gap_db(2.0, 1.0) == pytest.approx(10 * math.log10(2))


def test_reconstruction_error_and_snr():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    x_hat = torch.tensor([[3.0, 3.0], [1.0, 0.0]])
    err = reconstruction_error(x, x_hat)
    assert err["mse"] == pytest.approx(1.0) and err["mse_per_dim"] == pytest.approx(0.5)
    assert snr_db(x, x_hat) == pytest.approx(10 * math.log10(12.5 / 1.0))


def test_perplexity_uniform_and_collapsed():
    K = 8
    uniform = torch.arange(K).repeat(10).unsqueeze(1)
    collapsed = torch.zeros(80, 1, dtype=torch.long)
    both = torch.cat([uniform, collapsed], dim=1)
    p = codebook_perplexity(both, K)
    assert p[0].item() == pytest.approx(K) and p[1].item() == pytest.approx(1.0)
    stats = code_statistics(both, K)
    assert stats["usage_mean"] == pytest.approx((1.0 + 1 / K) / 2)


def test_complexity_counts_agree_across_quantizers():
    """Invariants between the quantizers' own counts rather than their formulas restated: PVQ
    with one subspace is VQ; RVQ with one stage is VQ plus the residual update (D subs + D
    moves); a PVQ of M subspaces is M VQs of D/M dims; AVQ with one codebook is one table of
    <x, c> (+ ||c||^2 and ||x||^2 adds) and an argmin; more beam never costs less."""
    from vqbench.metrics.complexity import ADD, MOVE

    assert encode_ops(PVQ(64, 1, 8)) == encode_ops(VQ(64, 8))
    assert encode_ops(RVQ(64, 1, 8)) == encode_ops(VQ(64, 8)) + 64 * (ADD + MOVE)
    assert encode_ops(PVQ(64, 4, 5)) == 4 * encode_ops(VQ(16, 5))
    assert encode_ops(RVQ(64, 4, 5)) == 4 * encode_ops(RVQ(64, 1, 5))
    assert encode_ops(AVQ(64, 1, 8, beam_width=1)) == encode_ops(VQ(64, 8)) + 256 * ADD
    ops = [encode_ops(AVQ(64, 4, 4, beam_width=w)) for w in (1, 2, 4, 8, 16, 64)]
    assert all(a < b for a, b in zip(ops, ops[1:]))
    # the widest useful beam: every set of codewords kept, so a wider one costs the same
    assert encode_ops(AVQ(8, 2, 2, beam_width=8)) == encode_ops(AVQ(8, 2, 2, beam_width=1000))


def test_rd_bound_of_one_component_is_closed_form():
    # N(0, s): D(R) = s 2^(-2R); the bisection's bracket must hold the water level even in 1-D
    for s, bits in [(1.0, 1.0), (3.0, 0.25), (0.5, 6.0)]:
        assert gaussian_rd_distortion(np.array([s]), bits) == pytest.approx(s * 2 ** (-2 * bits), rel=1e-9)
    # one bit is not zero bits: the closed form, not the variance
    assert gaussian_rd_distortion(np.array([2.0, 2.0]), 1) == pytest.approx(2 * 2.0 * 2 ** (-1), rel=1e-9)


def test_rd_bound_rejects_zero_eigenvalues_and_empty_or_matrix_input():
    for bad in (np.array([1.0, 0.0]), np.array([]), np.ones((2, 2)), np.array([-1.0])):
        with pytest.raises(ValueError, match="non-empty vector of positive numbers"):
            gaussian_rd_distortion(bad, 2)


def test_rd_bound_works_in_float64_whatever_the_input_dtype():
    lam = np.array([0.1, 0.3, 2.7])
    exact = gaussian_rd_distortion(lam, 3.3)
    assert gaussian_rd_distortion(lam.astype(np.float32).astype(np.float64), 3.3) == pytest.approx(
        gaussian_rd_distortion(lam.astype(np.float32), 3.3), rel=1e-13)
    assert gaussian_rd_distortion([0.1, 0.3, 2.7], 3.3) == exact


def test_gap_db_is_above_the_bound_in_db():
    assert gap_db(10.0, 1.0) == pytest.approx(10.0)
    assert gap_db(1.0, 10.0) == pytest.approx(-10.0)


def test_snr_of_an_exact_reconstruction_is_infinite_and_of_a_scaled_error_exact():
    x = torch.tensor([[1.0, 2.0], [2.0, 0.0]])
    assert snr_db(x, x.clone()) == math.inf
    # signal 4.5 per vector, noise 0.45: 10 dB (not -10 dB, not 20 dB)
    noise = torch.tensor([[0.3, 0.0], [0.0, 0.6]])
    assert snr_db(x, x + noise) == pytest.approx(10 * math.log10(4.5 / 0.225))


def test_perplexity_and_usage_of_unequal_codebooks_exactly():
    """Codebook 0 uses codewords 0, 0, 1 (p = 2/3, 1/3); codebook 1 uses codeword 2 three times;
    K = 4, so usage is 2/4 and 1/4; one row alone is a codebook used once."""
    codes = torch.tensor([[0, 2], [0, 2], [1, 2]])
    entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    p = codebook_perplexity(codes, 4)
    assert p.tolist() == pytest.approx([math.exp(entropy), 1.0])
    from vqbench.metrics.vectors import codebook_usage

    assert codebook_usage(codes, 4).tolist() == pytest.approx([0.5, 0.25])
    assert codebook_perplexity(codes[:1], 4).tolist() == pytest.approx([1.0, 1.0])
    stats = code_statistics(codes, 4)
    assert stats == pytest.approx({"perplexity_mean": (math.exp(entropy) + 1) / 2, "usage_mean": 0.375,
                                   "perplexity_0": math.exp(entropy), "perplexity_1": 1.0})


def test_operation_counts_of_the_helpers_exactly():
    """ITU-T G.191 weights (add = mul = MAC = move = 1, compare = 4), integers throughout."""
    from vqbench.metrics.complexity import COMPARE, encode_wmops, nearest_codeword_ops, topk_ops

    assert COMPARE == 4
    # 4 codewords of 2 dims: 2 MACs + 1 add each, and one compare each
    assert nearest_codeword_ops(4, 2) == 4 * (2 + 1) + 4 * 4 == 28
    assert type(nearest_codeword_ops(4, 2)) is int
    # k best of `candidates`: a compare each, plus sorting k (k log2 k compares, at least k)
    assert topk_ops(10, 4) == 10 * 4 + 4 * 2 * 4 == 72
    assert topk_ops(5, 2) == 5 * 4 + 2 * 1 * 4 == 28
    assert topk_ops(5, 1) == 5 * 4 + 1 * 4 == 24
    assert topk_ops(9, 8) == 9 * 4 + 8 * 3 * 4 == 132
    assert type(topk_ops(10, 4)) is int
    assert encode_wmops(VQ(2, 2)) == encode_ops(VQ(2, 2)) / 1e6 == 28e-6
