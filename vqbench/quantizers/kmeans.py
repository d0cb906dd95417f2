"""Classical codebook fits the quantizers are built from (their ``fit_kmeans``; the ``kmeans``
optimizer in training/kmeans.py calls those):

* Lloyd's k-means (faiss) and exact nearest-codeword assignment;
* k-means in every subspace (PVQ) and residual k-means, stage by stage on what earlier stages
  left (RVQ; AVQ's start);
* AVQ's alternation of beam-search encoding and the least-squares codebook update of Additive
  Quantization (Babenko & Lempitsky 2014): with B the N x MK one-hot code matrix,
  C = argmin ||X - B C||^2 + lam ||C - C_old||^2, i.e. (B^T B + lam I) C = B^T X + lam C_old
  (the ridge keeps unused codewords where they were).
"""

from __future__ import annotations

import numpy as np
import torch

from ..common.progress import progress as progress_bar
from .base import Quantizer


def lloyd(x: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:
    """k-means centroids [k, d] of x [n, d] (float32), by faiss."""
    import faiss  # here, not at the top: the library layers never load faiss

    if x.shape[0] < k:
        raise ValueError(f"k-means: {x.shape[0]} training vectors cannot fit {k} centroids; use more data or fewer bits")
    km = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, verbose=False, max_points_per_centroid=1 << 30)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    return km.centroids


def nearest(codebook: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest codeword [n] for every row of x (faiss exact search)."""
    import faiss

    index = faiss.IndexFlatL2(codebook.shape[1])
    index.add(np.ascontiguousarray(codebook, dtype=np.float32))
    return index.search(np.ascontiguousarray(x, dtype=np.float32), 1)[1][:, 0]


def fit_subspaces_kmeans(q: Quantizer, x: np.ndarray, iterations: int, seed: int, progress: bool) -> None:
    """Lloyd's k-means in every subspace (faiss)."""
    M, K, d = q.codebooks.shape
    sub = x.reshape(x.shape[0], M, d)
    books = np.stack([lloyd(sub[:, m], K, iterations, seed + m)
                      for m in progress_bar(range(M), desc="k-means subspaces", enabled=progress and M > 1)])
    q.codebooks.data = torch.from_numpy(books).to(q.codebooks)


def fit_residual_kmeans(q: Quantizer, x: np.ndarray, iterations: int, seed: int, progress: bool) -> None:
    """Residual k-means: codebook m is Lloyd's k-means of what codebooks 0..m-1 left (faiss)."""
    M, K, d = q.codebooks.shape
    books = np.empty((M, K, d), dtype=np.float32)
    residual = x.copy()
    for m in progress_bar(range(M), desc="residual k-means", enabled=progress):
        books[m] = lloyd(residual, K, iterations, seed + m)
        residual -= books[m][nearest(books[m], residual)]
    q.codebooks.data = torch.from_numpy(books).to(q.codebooks)


@torch.no_grad()
def alternate_least_squares(quantizer: Quantizer, data: torch.Tensor, rounds: int, progress: bool,
                            history: list[float] | None = None) -> dict[str, float]:
    """AQ's alternation: encode all data by beam search, then solve for all codebooks jointly.

    The training error never rises: the ridge least-squares step cannot raise it (its
    objective at the old codebooks is the old error), and a vector keeps its previous codes
    whenever the beam search (not exhaustive) finds worse ones. `history` receives the
    training MSE after every round."""
    x = data.detach().to(quantizer.codebooks.device, torch.float32)
    mse, codes = float("nan"), None
    for r in progress_bar(range(rounds), desc="AQ encode + least squares", enabled=progress):
        new = quantizer.encode(x, progress=f"AQ round {r + 1}/{rounds}: encode" if progress else None)
        if codes is not None:
            old_err = (x - quantizer.decode(codes)).pow(2).sum(1)
            new_err = (x - quantizer.decode(new)).pow(2).sum(1)
            new = torch.where((old_err <= new_err).unsqueeze(1), codes, new)
        codes = new
        quantizer.codebooks.data = least_squares_codebooks(x, codes, quantizer.codebooks.data)
        mse = (x - quantizer.decode(codes)).pow(2).sum(1).mean().item()
        if history is not None:
            history.append(mse)
    return {"alternations": float(rounds), "train_mse": mse}


def least_squares_codebooks(
    x: torch.Tensor, codes: torch.Tensor, old: torch.Tensor, ridge: float = 1.0
) -> torch.Tensor:
    """Codebooks [M, K, D] minimising ||x - sum_m C_m[codes_m]||^2 + ridge ||C - old||^2."""
    M, K, D = old.shape
    MK = M * K
    flat = codes + torch.arange(M, device=codes.device) * K  # [N, M] rows of B that are 1
    # B^T B: co-occurrence counts of every pair of chosen codewords.
    pairs = (flat.unsqueeze(2) * MK + flat.unsqueeze(1)).flatten()
    gram = torch.bincount(pairs, minlength=MK * MK).view(MK, MK).double()
    rhs = torch.zeros(MK, D, dtype=torch.float64, device=x.device)
    for m in range(M):  # B^T X, one codebook at a time (M index_adds, no loop over vectors)
        rhs.index_add_(0, flat[:, m], x.double())
    gram.diagonal().add_(ridge)
    rhs += ridge * old.reshape(MK, D).double()
    return torch.linalg.solve(gram, rhs).float().view(M, K, D)
