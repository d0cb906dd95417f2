"""Gaussian toy sources: uncorrelated N(0, I) or correlated N(0, S), S_ij = rho^|i-j|.

Train and test sets are drawn from independent streams of the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KINDS = ("correlated", "uncorrelated")


def toy_covariance(kind: str, dim: int, rho: float) -> np.ndarray:
    if kind not in KINDS:
        raise ValueError(f"dataset.kind must be one of {KINDS}, got {kind!r}")
    if dim < 1:
        raise ValueError(f"dataset.dim must be >= 1, got {dim}")
    if kind == "uncorrelated":
        return np.eye(dim)
    if not -1.0 < rho < 1.0:
        raise ValueError(f"dataset.rho must lie in (-1, 1) for a valid covariance, got {rho}")
    idx = np.arange(dim)
    return rho ** np.abs(idx[:, None] - idx[None, :]).astype(np.float64)


@dataclass
class ToyData:
    train: torch.Tensor  # [num_train, dim] float32
    test: torch.Tensor  # [num_test, dim] float32
    covariance: np.ndarray  # [dim, dim] float64, the true source covariance

    @property
    def eigenvalues(self) -> np.ndarray:
        return np.linalg.eigvalsh(self.covariance)


def make_toy_data(kind: str, dim: int, rho: float, num_train: int, num_test: int, seed: int) -> ToyData:
    cov = toy_covariance(kind, dim, rho)
    chol = np.linalg.cholesky(cov)
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    def draw(rng: np.random.Generator, n: int) -> torch.Tensor:
        return torch.from_numpy((rng.standard_normal((n, dim)) @ chol.T).astype(np.float32))

    return ToyData(train=draw(train_rng, num_train), test=draw(test_rng, num_test), covariance=cov)
