"""Toy Gaussian sources: the covariance the samples follow, and the R-D bound of a rank-deficient source."""

import numpy as np
import pytest

from vqbench.data.toy import make_toy_data
from vqbench.rate_distortion import gaussian_rd_distortion


@pytest.mark.parametrize("kind", ["uncorrelated", "correlated", "lowrank"])
def test_samples_follow_the_stated_covariance(kind):
    data = make_toy_data(kind, 16, 0.8, 200_000, 10, seed=3, rank=4)
    sample_cov = np.cov(data.train.double().numpy().T)
    assert np.abs(sample_cov - data.covariance).max() < 0.05
    assert np.trace(data.covariance) == pytest.approx(16.0)  # unit variance per dim on average


def test_lowrank_source_has_rank_nonzero_eigenvalues_and_a_finite_bound():
    data = make_toy_data("lowrank", 64, 0.0, 10, 10, seed=0, rank=16)
    lam = data.eigenvalues
    assert lam.size == 16 and lam.sum() == pytest.approx(64.0)
    # all 16 dims above the water level: 4 more bits divide the bound by 2^(2*4/16) = sqrt(2)
    d32, d36 = (gaussian_rd_distortion(lam, b) for b in (32, 36))
    assert d32 / d36 == pytest.approx(2 ** (2 * 4 / 16), rel=1e-6)


def test_the_source_does_not_depend_on_the_run_seed():
    a = make_toy_data("lowrank", 32, 0.0, 10, 10, seed=0, rank=8)
    b = make_toy_data("lowrank", 32, 0.0, 10, 10, seed=1, rank=8)
    assert np.array_equal(a.covariance, b.covariance) and not np.array_equal(a.train, b.train)
    c = make_toy_data("lowrank", 32, 0.0, 10, 10, seed=0, rank=8, mixing_seed=1)
    assert not np.array_equal(a.covariance, c.covariance)
