"""vqbench.paper.toy_model: the rank-16 source fitted to Fig. 2a."""

import numpy as np
import pytest

from vqbench.metrics.rate_distortion import gaussian_rd_distortion
from vqbench.paper import figure
from vqbench.paper.toy_model import FIG2A_DIM, FIG2A_RANK, lowrank_covariance, mixing_matrix, sample_lowrank


def test_mixing_matrix_is_normalised_and_seeded():
    a = mixing_matrix(64, 16, seed=3)
    assert a.shape == (16, 64) and np.trace(a.T @ a) == pytest.approx(64.0)
    assert np.array_equal(a, mixing_matrix(64, 16, seed=3)) and not np.array_equal(a, mixing_matrix(64, 16, seed=4))
    assert np.linalg.matrix_rank(lowrank_covariance(64, 16)) == 16
    with pytest.raises(ValueError, match="rank=65, dim=64"):
        mixing_matrix(64, 65, seed=0)


def test_samples_follow_the_covariance():
    x = sample_lowrank(40000, 8, 2, seed=1).double().numpy()
    assert np.allclose(np.cov(x.T, bias=True), lowrank_covariance(8, 2, seed=1), atol=0.08)


def test_rd_bound_falls_like_the_papers_avq():
    # all 16 eigenvalues active from 20 bits on: the bound falls by exactly 2^(8/16) per 4 bits,
    # and the paper's AVQ by 1.403-1.415 there
    lam = np.clip(np.linalg.eigvalsh(lowrank_covariance(FIG2A_DIM, FIG2A_RANK)), 1e-12, None)
    d = [gaussian_rd_distortion(lam, b) for b in range(20, 41, 4)]
    assert np.allclose(np.array(d[:-1]) / np.array(d[1:]), np.sqrt(2), rtol=1e-6)
    avq = np.array(figure("fig2a").series["avq"].mean[2:])
    assert np.allclose(avq[:-1] / avq[1:], np.sqrt(2), rtol=0.01)


def test_the_default_mixing_seed_is_the_configs():
    """lowrank_covariance(dim, rank) is the source of the CLI's default dataset.mixing_seed (0)."""
    from vqbench.run.schema import ToyDataset

    a = mixing_matrix(8, 2, ToyDataset().mixing_seed)
    assert np.array_equal(lowrank_covariance(8, 2), a.T @ a)
    x = sample_lowrank(5, 8, 2)
    assert np.array_equal(x.numpy(), sample_lowrank(5, 8, 2, seed=ToyDataset().mixing_seed, sample_seed=1).numpy())
    assert not np.array_equal(x.numpy(), sample_lowrank(5, 8, 2, seed=1, sample_seed=1).numpy())
