"""Least-squares refinement of codebooks after gradient training (``optimizer.refine=K``).

Each of the K rounds fixes the codes the quantizer's own encoder gives the training vectors X
and solves for all codebooks at once, the codebook update of Additive Quantization
(Babenko & Lempitsky 2014) and LSQ (Martinez et al. 2016):

    C = argmin ||X - B C||^2 + ridge ||C - C_old||^2,   i.e. (B^T B + ridge I) C = B^T X + ridge C_old,

with B the N x MK one-hot matrix of the codes. B^T B [MK, MK] (co-occurrence counts of the
chosen codewords) and B^T X [MK, D] are accumulated by scatter-adds over chunks of N, so
1M x 128 vectors never build anything larger than a chunk. The small ridge pulls unused
codewords and the null space of B^T B (for sums of codewords: a constant moved from one
codebook to another) to where they were. The vectors are then re-encoded with the quantizer's
own ``encode`` (AVQ: its beam search; RVQ: greedy stages).

Codebooks over subspaces (PVQ; codeword dimension < data dimension) decouple: the joint solve
is, per subspace, the mean of the sub-vectors assigned to each codeword (with the same ridge).

Rule: a round is kept only if the training MSE under the quantizer's own encoder falls;
otherwise the codebooks of the previous round are restored and refinement stops (the next round
would repeat the same solve). So refinement never raises the training MSE. The statistics are
``refine_mse_0`` (after gradient training) .. ``refine_mse_K`` (after round r, of the codebooks
kept; rounds after a stop repeat the last value) and ``refine_rounds_kept``.
"""

from __future__ import annotations

import torch

from ..common.progress import progress as progress_bar
from ..quantizers import Quantizer

RIDGE = 1e-4  # in units of B^T B's diagonal (assignment counts)
CHUNK = 1 << 16  # training vectors per accumulation / MSE chunk


@torch.no_grad()
def normal_equations(x: torch.Tensor, codes: torch.Tensor, M: int, K: int,
                     chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """(B^T B [MK, MK], B^T X [MK, D]) in float64 for vectors x [N, D] and codes [N, M],
    accumulated chunk by chunk (bincount of codeword pairs, index_add of the vectors)."""
    MK, D = M * K, x.shape[1]
    gram = torch.zeros(MK * MK, dtype=torch.float64, device=x.device)
    rhs = torch.zeros(MK, D, dtype=torch.float64, device=x.device)
    offsets = torch.arange(M, device=codes.device) * K
    for start in range(0, x.shape[0], chunk):
        flat = (codes[start:start + chunk] + offsets).to(x.device)  # [n, M] the ones of B's rows
        xs = x[start:start + chunk].double()
        gram += torch.bincount((flat.unsqueeze(2) * MK + flat.unsqueeze(1)).flatten(), minlength=MK * MK)
        for m in range(M):
            rhs.index_add_(0, flat[:, m], xs)
    return gram.view(MK, MK), rhs


@torch.no_grad()
def solve_codebooks(x: torch.Tensor, codes: torch.Tensor, old: torch.Tensor, ridge: float = RIDGE,
                    chunk: int = CHUNK) -> torch.Tensor:
    """Codebooks [M, K, d] minimising ||x - decode(codes)||^2 + ridge ||C - old||^2 for
    codes [N, M]: sums of full-dimension codewords when d = D (VQ, RVQ, AVQ), concatenated
    sub-codewords when M * d = D with d < D (PVQ: per-subspace means)."""
    M, K, d = old.shape
    D = x.shape[1]
    if d == D:  # x_hat = sum of codewords: one joint solve
        gram, rhs = normal_equations(x, codes, M, K, chunk)
        gram.diagonal().add_(ridge)
        rhs += ridge * old.reshape(M * K, D).double()
        return torch.linalg.solve(gram, rhs).to(old.dtype).view(M, K, d)
    if M * d != D:
        raise ValueError(f"refine: codebooks {tuple(old.shape)} neither add up to nor tile dimension {D}")
    # x_hat = concatenation: B^T B is diagonal per subspace, the solve is a ridge mean.
    counts = torch.zeros(M, K, dtype=torch.float64, device=x.device)
    sums = torch.zeros(M, K, d, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        c = codes[start:start + chunk].to(x.device)
        sub = x[start:start + chunk].double().view(-1, M, d)
        for m in range(M):
            counts[m].index_add_(0, c[:, m], torch.ones(c.shape[0], dtype=torch.float64, device=x.device))
            sums[m].index_add_(0, c[:, m], sub[:, m])
    new = (sums + ridge * old.double()) / (counts + ridge).unsqueeze(2)
    return new.to(old.dtype)


@torch.no_grad()
def encode_mse(quantizer: Quantizer, x: torch.Tensor, chunk: int = CHUNK) -> tuple[torch.Tensor, float]:
    """The quantizer's own codes of x [N, M] and the mean ||x - x_hat||^2 (decoded in chunks)."""
    codes = quantizer.encode(x)
    total = 0.0
    for start in range(0, x.shape[0], chunk):
        err = x[start:start + chunk] - quantizer.decode(codes[start:start + chunk])
        total += float(err.double().pow(2).sum())
    return codes, total / max(1, x.shape[0])


@torch.no_grad()
def refine_codebooks(quantizer: Quantizer, data: torch.Tensor, rounds: int, progress: bool = False,
                     ridge: float = RIDGE) -> dict[str, float]:
    """Run `rounds` rounds of (fix codes, joint least squares, re-encode) on the training
    vectors `data` [N, D]; keep a round only if it lowers the training MSE (module docstring)."""
    x = data.detach().to(quantizer.codebooks.device, torch.float32)
    codes, mse = encode_mse(quantizer, x)
    stats = {"refine_mse_0": mse}
    kept, stopped = 0, False
    for r in progress_bar(range(1, rounds + 1), desc=f"refine {quantizer.name}", enabled=progress):
        if not stopped:
            old = quantizer.codebooks.data.clone()
            quantizer.codebooks.data = solve_codebooks(x, codes, old, ridge)
            new_codes, new_mse = encode_mse(quantizer, x)
            if new_mse < mse:
                codes, mse, kept = new_codes, new_mse, kept + 1
            else:
                quantizer.codebooks.data = old
                stopped = True
        stats[f"refine_mse_{r}"] = mse
    stats["refine_rounds_kept"] = float(kept)
    return stats
