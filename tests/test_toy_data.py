"""Toy Gaussian sources: the covariance the samples follow, and the R-D bound of a rank-deficient source."""

import numpy as np
import pytest
import torch

from vqbench.data.toy import make_toy_data
from vqbench.metrics.rate_distortion import gaussian_rd_distortion


@pytest.mark.parametrize("kind", ["uncorrelated", "correlated", "lowrank"])
def test_samples_follow_the_stated_covariance(kind):
    data = make_toy_data(kind, 16, 0.8, 200_000, 10, seed=3, rank=4, mixing_seed=0)
    sample_cov = np.cov(data.train.double().numpy().T)
    assert np.abs(sample_cov - data.covariance).max() < 0.05
    assert np.trace(data.covariance) == pytest.approx(16.0)  # unit variance per dim on average


def test_lowrank_source_has_rank_nonzero_eigenvalues_and_a_finite_bound():
    data = make_toy_data("lowrank", 64, 0.0, 10, 10, seed=0, rank=16, mixing_seed=0)
    lam = data.eigenvalues
    assert lam.size == 16 and lam.sum() == pytest.approx(64.0)
    # all 16 dims above the water level: 4 more bits divide the bound by 2^(2*4/16) = sqrt(2)
    d32, d36 = (gaussian_rd_distortion(lam, b) for b in (32, 36))
    assert d32 / d36 == pytest.approx(2 ** (2 * 4 / 16), rel=1e-6)


def test_the_source_does_not_depend_on_the_run_seed():
    a = make_toy_data("lowrank", 32, 0.0, 10, 10, seed=0, rank=8, mixing_seed=0)
    b = make_toy_data("lowrank", 32, 0.0, 10, 10, seed=1, rank=8, mixing_seed=0)
    assert np.array_equal(a.covariance, b.covariance) and not np.array_equal(a.train, b.train)
    c = make_toy_data("lowrank", 32, 0.0, 10, 10, seed=0, rank=8, mixing_seed=1)
    assert not np.array_equal(a.covariance, c.covariance)


@pytest.mark.parametrize("kind", ["uncorrelated", "correlated", "lowrank"])
def test_fresh_batches_follow_the_source_and_are_new_draws(kind):
    data = make_toy_data(kind, 16, 0.8, 1000, 10, seed=3, rank=4, mixing_seed=0)
    draw = data.batches()
    batches = [draw(50_000) for _ in range(4)]
    sample_cov = np.cov(torch.cat(batches).double().numpy().T)
    assert np.abs(sample_cov - data.covariance).max() < 0.05
    assert not torch.equal(batches[0], batches[1])  # a stream, not one batch repeated
    assert not torch.equal(batches[0][:1000], data.train)  # not the fixed training set


def test_fresh_batches_repeat_for_the_same_seed_only():
    first = make_toy_data("uncorrelated", 8, 0.0, 10, 10, seed=5).batches()
    again = make_toy_data("uncorrelated", 8, 0.0, 10, 10, seed=5).batches()
    other = make_toy_data("uncorrelated", 8, 0.0, 10, 10, seed=6).batches()
    a, b, c = first(64), again(64), other(64)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_lowrank_source_needs_its_mixing_seed():
    """The source's seed has no Python default: its one default is the schema's (dataset.mixing_seed)."""
    with pytest.raises(ValueError, match="dataset.mixing_seed must be given for kind=lowrank"):
        make_toy_data("lowrank", 8, 0.0, 10, 10, seed=0, rank=2)
    # kinds that have no matrix to draw need no seed for it
    assert make_toy_data("correlated", 8, 0.5, 10, 10, seed=0).mixing.shape == (8, 8)
