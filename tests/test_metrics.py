"""Metrics and the Gaussian rate-distortion bound against closed-form answers."""

import math

import numpy as np
import pytest
import torch

from vqbench.complexity import encode_ops
from vqbench.metrics import code_statistics, codebook_perplexity, reconstruction_error, snr_db
from vqbench.quantizers import AVQ, PVQ, RVQ, VQ
from vqbench.rate_distortion import gap_db, gaussian_rd_distortion


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


def test_complexity_counts_grow_with_search_effort():
    vq, pvq, rvq = VQ(64, 8), PVQ(64, 4, 2), RVQ(64, 4, 2)
    assert encode_ops(vq) == 256 * (64 + 1) + 256 * 4
    assert encode_ops(pvq) == 4 * (4 * (16 + 1) + 4 * 4)
    assert encode_ops(rvq) > encode_ops(pvq)
    narrow, wide = AVQ(64, 4, 3, beam_width=1), AVQ(64, 4, 3, beam_width=16)
    assert encode_ops(wide) > 4 * encode_ops(narrow)
