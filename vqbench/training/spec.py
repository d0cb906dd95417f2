"""What an optimizer is to the rest of vqbench: one ``OptimizerSpec`` per optimizer, kept in
``vqbench.training.registry.OPTIMIZERS`` (as quantizers are in ``QUANTIZERS``).

An optimizer's module holds everything about it:

* ``Config``                     its config dataclass, registered as ``optimizer=<name>``
                                 (Hydra's config group comes from the registry: no YAML file);
* ``gradient``                   whether it trains codebooks by gradient steps (then it can draw
                                 fresh batches, ``dataset.fresh_batches=true``);
* ``check_config(ocfg)``         its setting checks (one-line ConfigErrors);
* ``fit(quantizer, data, ...)``  how it fits a quantizer to raw vectors (toy and ANN experiments);
* ``bottleneck(quantizer, ...)`` its VQ-VAE bottleneck: z -> (z for the decoder, auxiliary loss),
                                 plus any per-step codebook update (EMA) and its state.

Code elsewhere asks the spec; nothing dispatches on an optimizer's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from ..common.checks import check_positive, check_range
from ..quantizers import Quantizer

Batches = Callable[[int], torch.Tensor]  # n -> n fresh training vectors [n, D]


class Bottleneck:
    """How a VQ-VAE passes its latents through the quantizer during training.

    ``forward(z, codes)`` gets the latent vectors z [N, C] (with gradient) and their hard codes
    [N, M] and returns (what the decoder sees [N, C], the auxiliary loss, a 0-dim tensor)."""

    codebooks_by_gradient: ClassVar[bool] = True  # False: Adam leaves the codebooks to `after_step`

    def __init__(self, quantizer: Quantizer):
        self.quantizer = quantizer

    def forward(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(z, codes)

    def after_step(self, latents: torch.Tensor, codes: torch.Tensor) -> None:
        """Hook after each optimizer step (EMA codebook updates)."""

    def codewords_replaced(self, mask: torch.Tensor) -> None:
        """Hook after dead-code replacement overwrote the codewords `mask` [M, K]."""

    def state_dict(self) -> dict[str, Any] | None:
        """State to checkpoint (None: nothing beyond the model's parameters)."""
        return None

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore what ``state_dict`` returned."""


class OptimizerSpec:
    """Base class of an optimizer's registry entry (see the module docstring)."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type]
    gradient: ClassVar[bool] = False

    def check_config(self, ocfg: Mapping[str, Any]) -> None:
        """One-line ConfigErrors for settings of this optimizer that types cannot refuse;
        subclasses add their own keys' checks."""
        check_positive(ocfg, "optimizer", "batch_size")
        check_range("optimizer.lr", ocfg["lr"], 0, lo_open=True)
        rep = ocfg["replacement"]
        if rep:
            check_positive(rep, "optimizer.replacement", "num_batches")
            check_range("optimizer.replacement.discard_threshold", rep["discard_threshold"], 0, 1)
            check_range("optimizer.replacement.noise", rep["noise"], 0)

    def fit(self, quantizer: Quantizer, data: torch.Tensor, ocfg: Mapping[str, Any], device: torch.device,
            seed: int, progress: bool, batches: Batches | None) -> dict[str, float]:
        """Fit `quantizer` to raw vectors `data` [N, D]; returns training statistics (floats).
        ``batches``, if given, is a stream of fresh vectors (gradient optimizers only)."""
        raise NotImplementedError

    def bottleneck(self, quantizer: Quantizer, ocfg: Mapping[str, Any], generator: torch.Generator) -> Bottleneck:
        """The VQ-VAE bottleneck of this optimizer (`generator`: its noise, if it draws any)."""
        raise NotImplementedError

    @property
    def series_suffix(self) -> str:
        """What figures append to a quantizer's name for runs of this optimizer (``rvq_kmeans``);
        the paper's own optimizer (NSVQ) appends nothing."""
        return f"_{self.name}"
