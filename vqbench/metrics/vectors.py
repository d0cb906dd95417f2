"""Metrics on vectors and codes, kept apart from quantizer and training code."""

from __future__ import annotations

import math

import torch


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """Mean squared error per vector (summed over dimensions) and per dimension."""
    per_vector = (x.double() - x_hat.double()).pow(2).sum(1).mean().item()
    return {"mse": per_vector, "mse_per_dim": per_vector / x.shape[1]}


def snr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """10 log10(E||x||^2 / E||x - x_hat||^2)."""
    signal = x.double().pow(2).sum(1).mean().item()
    noise = (x.double() - x_hat.double()).pow(2).sum(1).mean().item()
    return 10.0 * math.log10(signal / noise) if noise > 0 else math.inf


def codebook_perplexity(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy) of each codebook's codeword usage, [M]; between 1 and K."""
    M = codes.shape[1]
    offsets = torch.arange(M, device=codes.device) * codebook_size
    counts = torch.bincount((codes + offsets).flatten(), minlength=M * codebook_size).view(M, codebook_size)
    p = counts.double() / counts.sum(1, keepdim=True).clamp_min(1)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(1)
    return entropy.exp()


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Fraction of each codebook's codewords used at least once, [M]."""
    M = codes.shape[1]
    offsets = torch.arange(M, device=codes.device) * codebook_size
    counts = torch.bincount((codes + offsets).flatten(), minlength=M * codebook_size).view(M, codebook_size)
    return (counts > 0).double().mean(1)


def code_statistics(codes: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Flat metrics: perplexity and usage of every codebook, plus their means."""
    perplexity = codebook_perplexity(codes, codebook_size)
    usage = codebook_usage(codes, codebook_size)
    out = {"perplexity_mean": perplexity.mean().item(), "usage_mean": usage.mean().item()}
    for m in range(codes.shape[1]):
        out[f"perplexity_{m}"] = perplexity[m].item()
    return out
