"""Classical codebook fits (the ``kmeans`` optimizer): each quantizer's ``fit_kmeans`` says
which fit is its own, built from the primitives here.

* VQ:  Lloyd's k-means (faiss).
* PVQ: Lloyd's k-means in each subspace.
* RVQ: residual k-means, stage by stage on what earlier stages left.
* AVQ: residual k-means as the start, then alternating (a) beam-search encoding of the
  training set and (b) the least-squares codebook update of Additive Quantization
  (Babenko & Lempitsky 2014): with B the N x MK one-hot code matrix,
  C = argmin ||X - B C||^2 + lam ||C - C_old||^2, i.e. (B^T B + lam I) C = B^T X + lam C_old
  (the ridge keeps unused codewords where they were).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faiss
import numpy as np
import torch

from ..progress import progress as progress_bar
from ..quantizers import Quantizer

log = logging.getLogger(__name__)


def lloyd(x: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:
    """k-means centroids [k, d] of x [n, d] (float32), by faiss."""
    if x.shape[0] < k:
        raise ValueError(f"k-means: {x.shape[0]} training vectors cannot fit {k} centroids; use more data or fewer bits")
    km = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, verbose=False, max_points_per_centroid=1 << 30)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    return km.centroids


def nearest(codebook: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest codeword [n] for every row of x (faiss exact search)."""
    index = faiss.IndexFlatL2(codebook.shape[1])
    index.add(np.ascontiguousarray(codebook, dtype=np.float32))
    return index.search(np.ascontiguousarray(x, dtype=np.float32), 1)[1][:, 0]


def fit_kmeans(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    device: torch.device,
    seed: int,
    progress: bool = True,
) -> dict[str, float]:
    """The quantizer's own classical fit (``Quantizer.fit_kmeans``) on `data` [N, D]."""
    if torch.device(device).type != "cpu":  # faiss k-means, and AVQ's alternations on the compiled CPU search
        log.warning("optimizer=kmeans runs on the CPU (faiss k-means%s), not on device=%s; the codebooks move "
                    "to %s afterwards", ", AVQ alternations by the compiled CPU beam search"
                    if getattr(quantizer, "name", "") == "avq" else "", device, device)
    x = data.detach().cpu().numpy().astype(np.float32, copy=False)
    quantizer.to("cpu")
    stats = quantizer.fit_kmeans(x, int(ocfg["lloyd_iterations"]), int(ocfg["alternations"]), seed, progress)
    quantizer.to(device)
    return stats


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
