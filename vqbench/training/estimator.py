"""What a gradient estimator is: one ``Estimator`` subclass per module (nsvq.py, ste.py,
rotation.py, diveq.py, gumbel.py, ema.py), kept in ``vqbench.training.registry.ESTIMATORS``.

The same object serves everywhere an estimator is used:

* the library layers (``vqbench.RVQ(..., estimator="diveq")``, vqbench/nn/layer.py);
* the VQ-VAE, whose bottleneck is such a layer (vqbench/experiments/vqvae_state.py);
* gradient training on raw vectors (toy and ANN experiments, ``fit_gradient`` in gradient.py).

An estimator holds everything about itself:

* ``Config``            its ``optimizer=<name>`` section: ``GradientConfig`` plus its own keys
                        (e.g. ``beta``); registering it adds that option to the CLI's schema;
* ``check(settings)``   one-line ConfigErrors for its own keys (the prefix names where they come
                        from: ``optimizer.`` in the CLI, nothing in a layer);
* ``forward(x, x_hat, codes)`` -> ``(out, codes, aux_loss)``: what the next layer sees in
                        training (value and gradient), the codes it stands for (Gumbel samples
                        its own) and its auxiliary loss as a mean over elements (like ``F.mse_loss``);
* ``raw_loss(x, x_hat, codes)`` its training loss on raw vectors (default: ||x - out||^2 summed
                        over D plus the aux loss in the same units, means over vectors);
* hooks: ``after_step(x, codes)`` (after each optimizer step: EMA updates),
  ``codewords_replaced(mask)`` (after dead-codeword replacement or a new initialisation), and
  its state as ``nn.Module`` buffers (in ``state_dict``, following ``.to(device)``).

Adding an estimator is one module with its subclass and ``register_estimator(cls)`` (or one
entry in registry.py's ``BUILTIN``); tests/test_estimator_registry.py registers one inside the
test and runs it through the layers and all three experiments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from ..quantizers import Quantizer
from .gradient import GradientConfig


class Estimate(NamedTuple):
    """An estimator's training output for x [N, D]."""

    out: torch.Tensor  # [N, D]: what the next layer sees (value and gradient)
    codes: torch.Tensor  # [N, M]: the codes it stands for (the hard ones, or Gumbel's samples)
    aux_loss: torch.Tensor  # 0-dim: auxiliary loss, a mean over elements; zero if none


class Estimator(nn.Module):
    """Base class of a gradient estimator bound to one quantizer (see the module docstring).

    ``settings`` is a mapping holding at least the keys of the estimator's ``Config`` that it
    reads (an ``optimizer`` config section, or the keyword arguments of a layer); ``generator``
    draws its noise (None: torch's global generator)."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type] = GradientConfig
    codebooks_by_gradient: ClassVar[bool] = True  # False: the codebooks move in after_step (EMA)
    summary: ClassVar[str] = ""  # one line for --help and the README: forward value / gradient

    def __init__(self, quantizer: Quantizer, settings: Mapping[str, Any], generator: torch.Generator | None = None):
        super().__init__()
        self._quantizer = [quantizer]  # a list: not a submodule (the layer owns the quantizer)
        self.generator = generator

    @property
    def quantizer(self) -> Quantizer:
        """The quantizer this estimator is bound to."""
        return self._quantizer[0]

    # ------------------------------------------------------------------ settings
    @classmethod
    def own_keys(cls) -> tuple[str, ...]:
        """The keys of ``Config`` beyond those every gradient optimizer has (GradientConfig)."""
        shared = {f.name for f in dataclasses.fields(GradientConfig)}
        return tuple(f.name for f in dataclasses.fields(cls.Config) if f.name not in shared)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The defaults of its own keys (what a layer uses when not told otherwise)."""
        out = {}
        for f in dataclasses.fields(cls.Config):
            if f.name in cls.own_keys():
                value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                out[f.name] = value.value if hasattr(value, "value") else value
        return out

    @classmethod
    def check(cls, settings: Mapping[str, Any], prefix: str = "") -> None:
        """ConfigError (a ValueError) naming ``prefix + key`` for a bad value of its own keys."""

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, codes: torch.Tensor) -> Estimate:
        """x [N, D] (with gradient), x_hat = decode(codes) (with gradient to the codebooks)."""
        raise NotImplementedError

    def raw_loss(self, x: torch.Tensor, x_hat: torch.Tensor,
                 codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training on raw vectors (no network around the quantizer): (loss, the detached
        per-vector ||x - x_hat||^2, the codes used). Default: mean over vectors of
        ||x - out||^2 (summed over D) plus the aux loss in the same units (times D)."""
        out, codes, aux = self(x, x_hat, codes)
        loss = (x - out).pow(2).sum(1).mean() + aux * x.shape[1]
        return loss, (x - x_hat.detach()).pow(2).sum(1), codes

    def after_step(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """Hook after each optimizer step, with the step's (detached) inputs and codes."""

    def codewords_replaced(self, mask: torch.Tensor) -> None:
        """Hook after the codewords ``mask`` [M, K] were overwritten (replacement, initialisation)."""

    def extra_repr(self) -> str:
        """Its own settings, for the module's repr."""
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self.own_keys() if hasattr(self, k))


def mean_over_elements(per_vector_sum: torch.Tensor, dim: int) -> torch.Tensor:
    """An aux loss given as a mean over vectors of sums over ``dim`` elements, as a mean over
    elements (the layers' and the VQ-VAE's unit)."""
    return per_vector_sum / dim


__all__ = ["Estimate", "Estimator", "mean_over_elements"]
