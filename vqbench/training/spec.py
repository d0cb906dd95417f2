"""What an optimizer is to the rest of vqbench: one ``OptimizerSpec`` per optimizer, kept in
``vqbench.training.registry.OPTIMIZERS`` (as quantizers are in ``QUANTIZERS``).

An optimizer's module holds everything about it:

* ``Config``                     its config dataclass (a ``BudgetConfig``), registered as
                                 ``optimizer=<name>`` (Hydra's config group comes from the
                                 registry: no YAML file);
* ``gradient``                   whether it trains codebooks by gradient steps on batches (then it
                                 can draw fresh batches, ``dataset.fresh_batches=true``; a classical
                                 fit sees the whole training set at once);
* ``check_config(ocfg)``         its setting checks (one-line ConfigErrors);
* ``check_data(cfg, rows, src)`` its checks of the training set before any work (k-means: at least
                                 as many vectors as centroids);
* ``fit(quantizer, data, ...)``  how it fits a quantizer to raw vectors (toy and ANN experiments);
* ``estimator(quantizer, ...)``  the estimator (estimator.py) of the quantizer layer that is the
                                 VQ-VAE's bottleneck: a gradient optimizer's own estimator;
                                 ``kmeans``: EMA codebook updates.

Every gradient optimizer is one registered estimator (registry.py ``register_estimator``); a
spec of its own (``register_optimizer``) is for optimizers that are not, as ``kmeans``.

Code elsewhere asks the spec; nothing dispatches on an optimizer's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..common.checks import check_positive, check_range
from ..common.options import MISSING
from ..quantizers import Quantizer

Batches = Callable[[int], torch.Tensor]  # n -> n fresh training vectors [n, D]
Curve = Callable[[int, torch.Tensor, torch.Tensor], None]  # (step, batch MSE, codes) after every step


@dataclass
class BudgetConfig:
    """The budget keys of every optimizer, declared once: each optimizer reads its own and
    accepts the others', so that one sweep sets every optimizer's budget
    (`-m optimizer=nsvq,ste,kmeans optimizer.steps=100 optimizer.lloyd_iterations=5`)."""

    name: str = MISSING
    steps: int = 600  # gradient optimizers: Adam steps (batches); the VQ-VAE counts experiment.epochs instead
    lloyd_iterations: int = 25  # kmeans: Lloyd iterations per k-means (faiss)
    alternations: int = 3  # kmeans: AVQ's rounds of (beam-search encoding, least-squares codebooks)


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

    def check_data(self, cfg: Mapping[str, Any], rows: int, source: str) -> None:
        """One-line ConfigErrors, before any work, for a training set of `rows` vectors that this
        optimizer cannot fit with the configured quantizer (`source` names the key or file the
        vectors come from); the default accepts any."""

    def fit(self, quantizer: Quantizer, data: torch.Tensor, ocfg: Mapping[str, Any], device: torch.device,
            seed: int, progress: bool, batches: Batches | None, curve: Curve | None = None) -> dict[str, float]:
        """Fit `quantizer` to raw vectors `data` [N, D]; returns training statistics (floats).
        ``batches``, if given, is a stream of fresh vectors (gradient optimizers only);
        ``curve(step, batch_mse, codes)``, if given, is called after every training step."""
        raise NotImplementedError

    def estimator(self, quantizer: Quantizer, ocfg: Mapping[str, Any], generator: torch.Generator | None):
        """The estimator (vqbench.training.estimator.Estimator) of this optimizer for a layer
        around `quantizer` (`generator`: its noise, if it draws any)."""
        raise NotImplementedError

    @property
    def series_suffix(self) -> str:
        """What figures append to a quantizer's name for runs of this optimizer (``rvq_kmeans``);
        the paper's own optimizer (NSVQ) appends nothing."""
        return f"_{self.name}"
