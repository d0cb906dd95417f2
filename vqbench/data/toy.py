"""Gaussian toy sources x = z A, z ~ N(0, I):

* ``uncorrelated``: N(0, I) (A = I).
* ``correlated``: N(0, S) with S_ij = rho^|i-j| (A = the Cholesky factor of S).
* ``lowrank``: a rank-r source, A a fixed r x dim Gaussian matrix drawn from ``mixing_seed`` and
  scaled to unit variance per dim on average — the model that reproduces the paper's Fig. 2a
  (rank 16 in 64 dims; vqbench.paper.toy_model, results/paper/toy_model_fit.md).

Train and test sets are drawn from independent streams of the run's seed; the source itself
(A) does not depend on it. :meth:`ToyData.batches` draws an endless stream of fresh training
batches from the same source (a third stream of the seed), as the authors' training scripts do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..common.options import ToyKind


def mixing_matrix(dim: int, rank: int, seed: int) -> np.ndarray:
    """The rank x dim matrix A (float64), normalised to trace(A^T A) = dim."""
    if not 1 <= rank <= dim:
        raise ValueError(f"need 1 <= rank <= dim, got rank={rank}, dim={dim}")
    a = np.random.default_rng(seed).standard_normal((rank, dim))
    return a * np.sqrt(dim / np.sum(a * a))


def toy_mixing(kind: str, dim: int, rho: float, rank: int | None = None, mixing_seed: int | None = None) -> np.ndarray:
    """The matrix A [r, dim] (float64) of x = z A for the source `kind`: `rho` is read by
    ``correlated`` only, `rank` and `mixing_seed` (required there) by ``lowrank`` only. Their
    defaults are the schema's (vqbench.run.schema.ToyDataset)."""
    if kind not in {k.value for k in ToyKind}:
        raise ValueError(f"dataset.kind must be one of {[k.value for k in ToyKind]}, got {kind!r}")
    if dim < 1:
        raise ValueError(f"dataset.dim must be >= 1, got {dim}")
    if kind == ToyKind.uncorrelated.value:
        return np.eye(dim)
    if kind == ToyKind.lowrank.value:
        if rank is None or not 1 <= rank <= dim:
            raise ValueError(f"dataset.rank must be in 1..dataset.dim={dim} for kind=lowrank, got {rank}")
        if mixing_seed is None:
            raise ValueError("dataset.mixing_seed must be given for kind=lowrank (the seed of the source's matrix A)")
        return mixing_matrix(dim, rank, mixing_seed)
    if not -1.0 < rho < 1.0:
        raise ValueError(f"dataset.rho must lie in (-1, 1) for a valid covariance, got {rho}")
    idx = np.arange(dim)
    cov = rho ** np.abs(idx[:, None] - idx[None, :]).astype(np.float64)
    return np.linalg.cholesky(cov).T


def toy_covariance(kind: str, dim: int, rho: float, rank: int | None = None, mixing_seed: int | None = None) -> np.ndarray:
    """The source covariance A^T A [dim, dim] (float64); arguments as :func:`toy_mixing`."""
    a = toy_mixing(kind, dim, rho, rank, mixing_seed)
    return a.T @ a


@dataclass
class ToyData:
    train: torch.Tensor  # [num_train, dim] float32
    test: torch.Tensor  # [num_test, dim] float32
    mixing: np.ndarray  # [r, dim] float64: A of x = z A, the source
    seed: int  # the run's seed: train and test were drawn from its first two streams, batches() uses the third

    @property
    def covariance(self) -> np.ndarray:
        """[dim, dim] float64: the true source covariance A^T A."""
        return self.mixing.T @ self.mixing

    def batches(self, device: torch.device | str = "cpu") -> Callable[[int], torch.Tensor]:
        """A function n -> n fresh vectors [n, dim] of the source on `device` (drawn there: no
        host -> device copy per step), from the seed's third stream (independent of train and
        test; the same sequence for the same seed and device type: CPU and CUDA generators differ)."""
        stream = np.random.SeedSequence(self.seed).spawn(3)[2]  # [0], [1]: train, test
        device = torch.device(device)
        generator = torch.Generator(device=device).manual_seed(int(stream.generate_state(1)[0]))
        mixing = torch.from_numpy(self.mixing.astype(np.float32)).to(device)

        def draw(n: int) -> torch.Tensor:
            return torch.randn(n, mixing.shape[0], generator=generator, device=device) @ mixing

        return draw

    @property
    def eigenvalues(self) -> np.ndarray:
        """The covariance's non-zero eigenvalues (a rank-r source has r)."""
        lam = np.linalg.eigvalsh(self.covariance)
        return lam[lam > 1e-9 * lam.max()]


def make_toy_data(kind: str, dim: int, rho: float, num_train: int, num_test: int, seed: int,
                  rank: int | None = None, mixing_seed: int | None = None) -> ToyData:
    """`num_train` and `num_test` vectors of the source (:func:`toy_mixing`'s arguments) from the
    run's `seed`."""
    a = toy_mixing(kind, dim, rho, rank, mixing_seed)
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    def draw(rng: np.random.Generator, n: int) -> torch.Tensor:
        return torch.from_numpy((rng.standard_normal((n, a.shape[0])) @ a).astype(np.float32))

    return ToyData(train=draw(train_rng, num_train), test=draw(test_rng, num_test), mixing=a, seed=seed)
