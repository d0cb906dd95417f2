"""Learning curves for the experiments (curves.csv, vqbench.common.curves): the training steps
of a fit on raw vectors (toy, ANN), logged about 200 times per run without a host sync per step,
and the evaluation metrics the run measures at its end; the VQ-VAE logs one row per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..common.curves import Curves, log_every
from ..metrics.vectors import codebook_perplexity, codebook_usage


class StepCurve:
    """``curve(step, batch_mse, codes)`` for ``vqbench.training.fit``: keeps every
    ``log_every(steps)``-th step's batch MSE and code perplexity/usage (tensors on the device)."""

    def __init__(self, steps: int, codebook_size: int):
        self.every = log_every(max(int(steps), 1))
        self.last = int(steps) - 1
        self.codebook_size = codebook_size
        self.points: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __call__(self, step: int, mse: torch.Tensor, codes: torch.Tensor) -> None:
        if step % self.every and step != self.last:
            return
        with torch.no_grad():
            self.points.append((step, mse.detach(), codebook_perplexity(codes, self.codebook_size).mean(),
                                codebook_usage(codes, self.codebook_size).mean()))

    def write(self, run_dir: Path, logger: str, final: Mapping[str, Any], final_step: int | None = None) -> None:
        """curves.csv: the logged steps (train_loss = the batch's ||x - x_hat||^2 per vector), then
        one row at the end of training with the run's evaluation metrics `final`."""
        curves = Curves(run_dir, logger)
        for step, mse, perplexity, usage in self.points:
            curves.add(step=step + 1, train_loss=float(mse), perplexity=float(perplexity), usage=float(usage))
        end = final_step if final_step is not None else (self.points[-1][0] + 1 if self.points else 0)
        curves.add(step=end, **{k: v for k, v in final.items() if isinstance(v, (int, float))})
        curves.write()


def write_epoch_curves(run_dir: Path, logger: str, history: list[Mapping[str, Any]],
                       steps_per_epoch: int) -> None:
    """The VQ-VAE's curves.csv: one row per epoch of ``history.json`` (train loss, test metrics,
    the test codes' mean perplexity and usage)."""
    curves = Curves(run_dir, logger)
    for entry in history:
        perplexities = [v for k, v in entry.items() if k.startswith("test_perplexity_") and k != "test_perplexity_mean"]
        usages = [v for k, v in entry.items() if k.startswith("test_usage") and k != "test_usage_mean"]
        row = {"epoch": entry["epoch"], "step": int(entry["epoch"]) * steps_per_epoch,
               "train_loss": entry.get("train_loss"), "train_psnr": entry.get("train_psnr"),
               "perplexity": entry.get("test_perplexity_mean", sum(perplexities) / len(perplexities) if perplexities else None),
               "usage": entry.get("test_usage_mean", sum(usages) / len(usages) if usages else None)}
        row.update({k: v for k, v in entry.items() if k in ("test_psnr", "test_ssim", "test_mse")})
        curves.add(**row)
    curves.write()
