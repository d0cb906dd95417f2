"""Gradient training of a quantizer's codebooks on vectors with Adam, shared by the gradient
optimizers (one per registered estimator: NSVQ, STE, rotation, DiVeQ, ...): their common config
keys (``GradientConfig``), the training loop (``fit_gradient``) and their registry entry
(``GradientOptimizer``).

The hard codes come from the quantizer's own encoder (no gradient); x_hat = decode(codes)
carries the gradient to the codebooks through the estimator's ``raw_loss(x, x_hat, codes)``
(estimator.py; nsvq.py, ste.py, ...). EMA moves the codebooks in its ``after_step`` instead. On raw vectors (no encoder in front) NSVQ and STE both reduce to descending
||x - x_hat||^2 through the chosen codewords; they differ once an encoder sits before the
quantizer (VQ-VAE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..common.checks import check_positive, check_range
from ..common.options import Init, LrSchedule
from ..common.progress import progress as progress_bar
from ..quantizers import Quantizer
from .init import initialize_codebooks
from .refine import refine_codebooks
from .replacement import CodewordReplacer, ReplacementConfig
from .spec import Batches, BudgetConfig, OptimizerSpec


@dataclass
class GradientConfig(BudgetConfig):
    """Keys every gradient optimizer has (Adam on the codebooks); each subclasses it with its name.
    Of the budget keys (BudgetConfig) it reads ``steps``; k-means' are accepted and ignored."""

    batch_size: int = 256  # vectors (VQ-VAE: images) per step
    lr: float = 0.05  # Adam step size in units of the data's std (VQ-VAE: the network's absolute step)
    lr_schedule: LrSchedule = LrSchedule.cosine
    init: Init = Init.random  # codebook start
    replacement: ReplacementConfig = field(default_factory=ReplacementConfig)
    # raw vectors (toy, ANN): rounds of joint least-squares codebooks + re-encoding after the
    # Adam steps, each kept only if it lowers the training MSE (refine.py); 0: off. Not read by the VQ-VAE.
    refine: int = 0


def make_adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch has it for the device (one pass over the parameters
    instead of a dozen; the same update up to float rounding)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4 on CPU
        return torch.optim.Adam(params, lr=lr)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, steps: int):
    """The learning-rate schedule ``optimizer.lr_schedule`` names, over `steps` steps."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda it: 0.5 * (1.0 + math.cos(math.pi * min(it, steps) / steps))
        )
    raise ValueError(f"optimizer.lr_schedule must be 'constant' or 'cosine', got {schedule!r}")


def fit_gradient(
    quantizer: Quantizer,
    data: torch.Tensor,
    ocfg: Mapping[str, Any],
    make_estimator: Callable[[Quantizer, torch.Generator], Any],
    device: torch.device,
    seed: int,
    progress: bool,
    trace: list[torch.Tensor] | None = None,
    batches: Batches | None = None,
    curve: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> dict[str, float]:
    """Train the codebooks of `quantizer` on `data` [N, D] (float32, any device) with Adam on
    the loss of the estimator ``make_estimator(quantizer, noise_generator)`` builds (after the
    codebooks are initialised): its ``raw_loss(x, x_hat, codes) -> (loss, detached per-vector
    ||x - x_hat||^2, codes)``, then its ``after_step`` hook (EMA) and the codeword replacement.

    ``batches``, if given, is a source of fresh vectors (n -> [n, D]) that every step draws its
    batch from; `data` then only seeds the codebooks and sets the learning-rate scale.
    ``trace``, if given, receives each step's batch MSE (a 0-dim tensor on the device);
    ``curve(step, batch_mse, codes)``, if given, is called after every step (learning curves).
    """
    steps, batch_size = int(ocfg["steps"]), int(ocfg["batch_size"])
    generator = torch.Generator().manual_seed(seed)
    quantizer.to(device)
    # Batches are drawn from the data where it will be used: one move, not one per step.
    data = data.to(device=device, dtype=torch.float32)
    # optimizer.lr (like the random init's spread) is in units of the data's standard
    # deviation, so one setting serves unit-variance toy data and SIFT's 0..255 alike.
    data_scale = data.float().std().clamp_min(1e-12).item()
    estimator, replacer = _start(quantizer, data, ocfg, make_estimator, device, seed, generator)
    opt, scheduler = _adam(quantizer, estimator, float(ocfg["lr"]) * data_scale, ocfg["lr_schedule"], steps)

    # The running MSE (float64) stays on the device, read back only for the progress bar: no host sync per step.
    running = torch.zeros((), dtype=torch.float64, device=device)
    bar = progress_bar(range(steps), desc=f"train {quantizer.name}/{ocfg['name']}", enabled=progress)
    for it in bar:
        if batches is None:
            idx = torch.randint(data.shape[0], (batch_size,), generator=generator)
            batch = data.index_select(0, idx.to(data.device))
        else:
            batch = batches(batch_size).to(device=device, dtype=torch.float32)
        loss, err2, codes = _loss(quantizer, estimator, batch)
        if opt is not None:
            _descend(opt, scheduler, loss)
        _after_step(estimator, replacer, batch, codes, batches_left=steps - it - 1)
        mse = err2.mean().double()
        if trace is not None:
            trace.append(mse)
        if curve is not None:
            curve(it, mse, codes)
        running = mse.clone() if it == 0 else running.mul_(0.98).add_(0.02 * mse)
        if progress and it % 20 == 0:
            bar.set_postfix(mse=f"{running.item():.4g}", refresh=False)
    return {
        "train_mse": float(running.item()) if steps > 0 else float("nan"),
        "lr_absolute": float(ocfg["lr"]) * data_scale,
        "steps": float(steps),
        "codewords_replaced": float(replacer.total_replaced if replacer else 0),
    }


def _start(quantizer: Quantizer, data: torch.Tensor, ocfg: Mapping[str, Any],
           make_estimator: Callable[[Quantizer, torch.Generator], Any], device: torch.device, seed: int,
           generator: torch.Generator) -> tuple[Any, CodewordReplacer | None]:
    """Initialise the codebooks and build the estimator and the replacer; (None, None) for a
    codebook-free quantizer (FSQ), which trains its projections through its own straight-through
    rounding (its forward): estimators, initialisation and replacement act on codebooks."""
    if getattr(quantizer, "codebook_free", False):
        return None, None
    initialize_codebooks(quantizer, data, ocfg["init"], generator)
    # The estimator's own noise (DiVeQ, Gumbel; NSVQ draws none on raw vectors): a stream of
    # its own on the device, so it never shifts the batches drawn from `generator`.
    estimator = make_estimator(quantizer, torch.Generator(device=device).manual_seed(seed + 1))
    estimator.to(device)
    return estimator, CodewordReplacer.from_config(ocfg["replacement"], quantizer, generator)


def _adam(quantizer: Quantizer, estimator: Any, lr: float, schedule: str, steps: int):
    """(Adam, its schedule) on the quantizer's trainable parameters, or (None, None) when nothing
    trains by gradient (EMA's codebooks move in its after_step)."""
    by_gradient = estimator is None or estimator.codebooks_by_gradient
    params = [p for p in quantizer.parameters() if p.requires_grad] if by_gradient else []
    if not params:
        return None, None
    opt = make_adam(params, lr)
    return opt, make_scheduler(opt, schedule, steps)


def _loss(quantizer: Quantizer, estimator: Any,
          batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, detached per-vector ||x - x_hat||^2, codes) of one batch: the estimator's raw loss,
    or a codebook-free quantizer's own forward (estimator None)."""
    if estimator is None:
        out, codes, _ = quantizer(batch)
        err2 = (batch - out).pow(2).sum(1)
        return err2.mean(), err2.detach(), codes
    codes = quantizer.encode(batch)
    x_hat = quantizer.decode(codes)
    return estimator.raw_loss(batch, x_hat, codes)


def _descend(opt: torch.optim.Optimizer, scheduler, loss: torch.Tensor) -> None:
    """One optimizer step on ``loss`` (backward only when the loss has a gradient), then one
    step of the learning-rate schedule."""
    opt.zero_grad(set_to_none=True)
    if loss.requires_grad:
        loss.backward()
    opt.step()
    scheduler.step()


def _after_step(estimator: Any, replacer: CodewordReplacer | None, batch: torch.Tensor, codes: torch.Tensor,
                batches_left: int) -> None:
    """After the optimizer step: the estimator's hook (EMA) and the replacement window."""
    if estimator is not None:
        estimator.after_step(batch, codes)
    if replacer is not None:
        replacer.record(codes)
        replaced = replacer.maybe_replace(batches_left=batches_left)
        if replaced is not None:
            estimator.codewords_replaced(replaced)


class GradientOptimizer(OptimizerSpec):
    """Registry entry of a gradient optimizer: Adam on the codebooks through an estimator's
    ``raw_loss`` (``estimator_class``, one of the registered estimators)."""

    gradient = True

    def __init__(self, estimator_class: type):
        self.estimator_class = estimator_class
        self.name = estimator_class.name
        self.Config = estimator_class.Config

    def check_config(self, ocfg: Mapping[str, Any]) -> None:
        """The shared gradient-training checks and the estimator's own (named optimizer.<key>)."""
        check_positive(ocfg, "optimizer", "steps")
        check_range("optimizer.refine", ocfg["refine"], 0, integer=True)
        super().check_config(ocfg)
        self.estimator_class.check(ocfg, "optimizer.")

    def estimator(self, quantizer: Quantizer, ocfg: Mapping[str, Any], generator: torch.Generator | None):
        """This optimizer's estimator for `quantizer`, configured by `ocfg`."""
        return self.estimator_class(quantizer, ocfg, generator)

    def fit(self, quantizer: Quantizer, data: torch.Tensor, ocfg: Mapping[str, Any], device: torch.device,
            seed: int, progress: bool, batches: Batches | None, curve=None) -> dict[str, float]:
        """Adam on the codebooks of `quantizer` through the estimator (fit_gradient), then the
        least-squares refinement rounds of ``optimizer.refine`` (refine.py)."""
        stats = fit_gradient(quantizer, data, ocfg, lambda q, g: self.estimator(q, ocfg, g), device, seed,
                             progress, batches=batches, curve=curve)
        if ocfg["refine"]:  # least-squares rounds on the training vectors (also with fresh batches)
            stats.update(refine_codebooks(quantizer, data, int(ocfg["refine"]), progress))
        return stats

    @property
    def series_suffix(self) -> str:
        """What figures append to a quantizer's name for runs of this optimizer (NSVQ: nothing)."""
        suffix = getattr(self.estimator_class, "series_suffix", None)
        return f"_{self.name}" if suffix is None else suffix
