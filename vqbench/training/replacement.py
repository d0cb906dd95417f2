"""Replacement of unused codewords during training (as in the NSVQ reference code), written once:
the library layers, the VQ-VAE and gradient training on raw vectors all use ``CodewordReplacer``.

Each training batch marks which codewords it used (``record``). After every ``num_batches``
batches a window closes (``maybe_replace``): codewords used in fewer than ``discard_threshold``
of its batches are overwritten by slightly perturbed copies of used codewords of the same
codebook, the counts restart, and the mask of replaced codewords is returned (for the
estimator's ``codewords_replaced`` hook, e.g. EMA restarting their averages). When the caller
knows how many batches remain, no replacement happens in the last ``stop_before_end`` batches
(default: two windows) so the last codewords can settle; a layer does not know, and replaces
at every window.

The replacer is an ``nn.Module``: its counts, the batches in the open window and the total
replaced so far are buffers, so they are in the owner's ``state_dict`` and follow ``.to(device)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ReplacementConfig:
    """Replacement of unused codewords during training (``optimizer.replacement``)."""

    enabled: bool = True
    num_batches: int = 100  # check codeword use every this many batches
    discard_threshold: float = 0.01  # replace codewords used in fewer than this fraction of batches
    noise: float = 0.01  # perturbation of the copies, relative to the codebook's std


class CodewordReplacer(nn.Module):
    """Dead-codeword replacement for the codebooks of ``quantizer`` (see the module docstring)."""

    def __init__(self, quantizer: nn.Module, num_batches: int, discard_threshold: float, noise: float,
                 generator: torch.Generator | None = None):
        super().__init__()
        if num_batches < 1:
            raise ValueError(f"replacement.num_batches must be >= 1, got {num_batches}")
        if not 0.0 <= discard_threshold <= 1.0:
            raise ValueError(f"replacement.discard_threshold must be in [0, 1], got {discard_threshold}")
        self._quantizer = [quantizer]  # a list: not a submodule (its owner holds the quantizer)
        self.num_batches = num_batches
        self.discard_threshold = discard_threshold
        self.noise = noise
        self.generator = generator
        M, K, _ = quantizer.codebooks.shape
        device = quantizer.codebooks.device
        self.register_buffer("batches_used", torch.zeros(M, K, device=device))
        self.register_buffer("window", torch.zeros((), dtype=torch.long, device=device))
        self.register_buffer("replaced", torch.zeros((), dtype=torch.long, device=device))

    @classmethod
    def from_config(cls, rcfg, quantizer: nn.Module, generator: torch.Generator | None = None):
        """The replacer an `optimizer.replacement` section asks for, or None if it is disabled."""
        if not rcfg["enabled"]:
            return None
        return cls(quantizer, num_batches=int(rcfg["num_batches"]),
                   discard_threshold=float(rcfg["discard_threshold"]), noise=float(rcfg["noise"]),
                   generator=generator)

    @property
    def codebooks(self) -> torch.nn.Parameter:
        """The codebooks [M, K, d] it replaces codewords of."""
        return self._quantizer[0].codebooks

    @property
    def total_replaced(self) -> int:
        """Codewords replaced so far."""
        return int(self.replaced)

    @property
    def window_full(self) -> bool:
        """Whether the open window holds num_batches batches."""
        return int(self.window) >= self.num_batches

    def record(self, codes: torch.Tensor) -> None:
        """Mark the codewords used in this batch (codes [N, M])."""
        M, K = self.batches_used.shape
        flat = (codes + torch.arange(0, M * K, K, device=codes.device)).flatten()
        # One vectorised fill (bincount would sync with the host on CUDA to size its output).
        used = torch.zeros(M * K, device=codes.device).index_fill_(0, flat, 1.0)
        self.batches_used += used.view(M, K)
        self.window += 1

    @torch.no_grad()
    def maybe_replace(self, batches_left: int | None = None, stop_before_end: int | None = None) -> torch.Tensor | None:
        """Close the window if it holds ``num_batches`` batches: replace its dead codewords (unless
        fewer than ``stop_before_end``, default 2 * num_batches, of the ``batches_left`` still to
        come remain) and restart the counts. Returns the mask [M, K] of the codewords replaced
        (all False when none were), or None when no window closed."""
        if not self.window_full:
            return None
        stop = 2 * self.num_batches if stop_before_end is None else stop_before_end
        dead = torch.zeros_like(self.batches_used, dtype=torch.bool)
        if batches_left is None or batches_left >= stop:
            dead = self.batches_used / self.num_batches < self.discard_threshold
            self.replace(dead)
        self.batches_used.zero_()
        self.window.zero_()
        return dead

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
        self.replaced += n_dead
        return n_dead
