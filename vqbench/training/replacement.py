"""Replacement of unused codewords during gradient training (as in the NSVQ reference code).

Each batch marks which codewords were used. Every ``num_batches`` batches, codewords used
in fewer than ``discard_threshold`` of those batches are overwritten by slightly perturbed
copies of used codewords of the same codebook, and the counts restart. Replacement stops
``stop_before_end`` batches before the end of training so the last codewords can settle.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ReplacementConfig:
    """Replacement of unused codewords during training (``optimizer.replacement``)."""

    enabled: bool = True
    num_batches: int = 100  # check codeword use every this many batches
    discard_threshold: float = 0.01  # replace codewords used in fewer than this fraction of batches
    noise: float = 0.01  # perturbation of the copies, relative to the codebook's std


class CodewordReplacer:
    def __init__(
        self,
        codebooks: torch.nn.Parameter,
        num_batches: int,
        discard_threshold: float,
        noise: float,
        generator: torch.Generator | None = None,
    ):
        if num_batches < 1:
            raise ValueError(f"replacement.num_batches must be >= 1, got {num_batches}")
        if not 0.0 <= discard_threshold <= 1.0:
            raise ValueError(f"replacement.discard_threshold must be in [0, 1], got {discard_threshold}")
        self.codebooks = codebooks
        self.num_batches = num_batches
        self.discard_threshold = discard_threshold
        self.noise = noise
        self.generator = generator
        M, K, _ = codebooks.shape
        self.batches_used = torch.zeros(M, K, device=codebooks.device)
        self.total_replaced = 0

    @classmethod
    def from_config(cls, rcfg, codebooks: torch.nn.Parameter, generator: torch.Generator | None = None):
        """The replacer an `optimizer.replacement` section asks for, or None if it is disabled."""
        if not rcfg["enabled"]:
            return None
        return cls(codebooks, num_batches=int(rcfg["num_batches"]),
                   discard_threshold=float(rcfg["discard_threshold"]), noise=float(rcfg["noise"]),
                   generator=generator)

    def record(self, codes: torch.Tensor) -> None:
        """Mark the codewords used in this batch (codes [N, M])."""
        M, K = self.batches_used.shape
        flat = (codes + torch.arange(0, M * K, K, device=codes.device)).flatten()
        # One vectorised fill (bincount would sync with the host on CUDA to size its output).
        used = torch.zeros(M * K, device=codes.device).index_fill_(0, flat, 1.0)
        self.batches_used += used.view(M, K)

    @torch.no_grad()
    def maybe_replace(self, batch_index: int, total_batches: int, stop_before_end: int | None = None) -> int:
        """Replace dead codewords if this batch closes a window; returns how many were replaced."""
        if (batch_index + 1) % self.num_batches != 0:
            return 0
        stop = 2 * self.num_batches if stop_before_end is None else stop_before_end
        replaced = 0
        if batch_index < total_batches - stop:
            replaced = self.replace(self.batches_used / self.num_batches < self.discard_threshold)
        self.batches_used.zero_()
        return replaced

    @torch.no_grad()
    def replace(self, dead: torch.Tensor) -> int:
        """Overwrite codewords where dead [M, K] is True by perturbed copies of live ones."""
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        cb = self.codebooks.data
        M, K, _ = cb.shape
        # Each slot draws a live codeword of its own codebook (any, if none is live).
        weights = (~dead).float().cpu()
        weights[weights.sum(1) == 0] = 1.0
        source = torch.multinomial(weights, K, replacement=True, generator=self.generator).to(cb.device)
        copies = cb[torch.arange(M, device=cb.device).unsqueeze(1), source]  # [M, K, d]
        scale = cb.std().clamp_min(1e-8) * self.noise
        perturb = torch.randn(copies.shape, generator=self.generator).to(cb.device) * scale
        cb[dead] = (copies + perturb)[dead]
        self.total_replaced += n_dead
        return n_dead
