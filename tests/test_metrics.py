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
