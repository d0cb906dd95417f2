"""The rate-distortion bound of a Gaussian source (reverse water-filling).

For N(0, S) with eigenvalues l_i and water level t, rate and distortion (per vector) are
    R(t) = sum_i max(0, 1/2 log2(l_i / t)),   D(t) = sum_i min(t, l_i).
No quantizer of R bits per vector reaches a mean squared error below D(R).
"""

from __future__ import annotations

import math

import numpy as np


def gaussian_rd_distortion(eigenvalues: np.ndarray, bits: float) -> float:
    """Smallest achievable MSE per vector (sum over dims) at `bits` bits per vector."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or np.any(lam <= 0):
        raise ValueError("eigenvalues must be a non-empty vector of positive numbers")
    if bits < 0:
        raise ValueError(f"bits must be >= 0, got {bits}")
    if bits == 0:
        return float(lam.sum())

    def rate(log_t: float) -> float:
        return float(np.maximum(0.0, 0.5 * (np.log2(lam) - log_t / math.log(2))).sum())

    lo, hi = math.log(lam.min()) - 2.0 * bits * math.log(2) - 1.0, math.log(lam.max())
    for _ in range(200):  # bisection on log t: rate is decreasing in t
        mid = 0.5 * (lo + hi)
        if rate(mid) > bits:
            lo = mid
        else:
            hi = mid
    t = math.exp(0.5 * (lo + hi))
    return float(np.minimum(t, lam).sum())


def gap_db(mse: float, bound: float) -> float:
    """How far an MSE lies above the bound, in dB (0 = on the bound)."""
    return 10.0 * math.log10(mse / bound)
