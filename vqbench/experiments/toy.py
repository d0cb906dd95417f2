"""Toy experiment: quantize Gaussian vectors, compare the error with the rate-distortion bound."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..common.checks import ConfigError, check_positive, check_range
from ..data.toy import make_toy_data
from ..metrics.rate_distortion import gap_db, gaussian_rd_distortion
from ..metrics.vectors import code_statistics, reconstruction_error, snr_db
from ..quantizers import build_quantizer, check_quantizer_fits
from ..training import fit, gradient_optimizers, optimizer_spec
from .complexity import complexity_metrics


def validate(cfg: Mapping[str, Any]) -> None:
    d = cfg["dataset"]
    if d["name"] != "toy":
        raise ConfigError(f"experiment=toy needs dataset=toy, got dataset={d['name']!r}")
    check_positive(d, "dataset", "dim", "num_train", "num_test")
    if d["kind"] == "correlated":
        check_range("dataset.rho", d["rho"], -1, 1, lo_open=True, hi_open=True)
    if d["kind"] == "lowrank":
        check_range("dataset.rank", d["rank"], 1, int(d["dim"]))
    check_quantizer_fits(cfg, int(d["dim"]), "dataset.dim")
    if d["fresh_batches"] and not optimizer_spec(cfg["optimizer"]).gradient:
        raise ConfigError(f"dataset.fresh_batches=true needs a gradient optimizer ({' or '.join(gradient_optimizers())}); "
                          f"optimizer={cfg['optimizer']['name']} fits the fixed dataset.num_train vectors "
                          f"(set dataset.fresh_batches=false)")


def run(cfg: Mapping[str, Any], run_dir: Path, device: torch.device) -> dict[str, Any]:
    d, seed = cfg["dataset"], int(cfg["seed"])
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    data = make_toy_data(d["kind"], int(d["dim"]), float(d["rho"]), int(d["num_train"]), int(d["num_test"]), seed,
                         rank=int(d["rank"]), mixing_seed=int(d["mixing_seed"]))
    timings["data"] = time.perf_counter() - t0

    torch.manual_seed(seed)
    quantizer = build_quantizer(cfg["quantizer"], int(d["dim"])).to(device)
    t0 = time.perf_counter()
    batches = data.batches() if d["fresh_batches"] else None
    train_stats = fit(quantizer, data.train, cfg["optimizer"], device, seed,
                      progress=bool(cfg["progress"]), batches=batches)
    timings["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    test = data.test.to(device)
    x_hat, codes = quantizer.quantize(test)
    x_hat = x_hat.detach()
    timings["encode"] = time.perf_counter() - t0

    bound = gaussian_rd_distortion(data.eigenvalues, quantizer.bits)
    metrics: dict[str, float] = {"bits": float(quantizer.bits)}
    metrics.update(reconstruction_error(test, x_hat))
    metrics["snr_db"] = snr_db(test, x_hat)
    metrics["data_variance"] = float(data.eigenvalues.sum())  # trace of the covariance
    metrics["rd_bound_mse"] = bound
    metrics["rd_gap_db"] = gap_db(metrics["mse"], bound)
    metrics.update(code_statistics(codes, quantizer.codebook_size))
    metrics.update(complexity_metrics(quantizer))
    metrics["encode_vectors_per_s"] = test.shape[0] / max(timings["encode"], 1e-9)
    metrics.update({f"train.{k}": v for k, v in train_stats.items()})
    return {"metrics": metrics, "timings": timings}
