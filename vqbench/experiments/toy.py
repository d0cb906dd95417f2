"""Toy experiment: quantize Gaussian vectors, compare the error with the rate-distortion bound."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..common.checks import ConfigError, check_positive, check_range, check_seed
from ..common.memory import F32, F64, refuse_if_too_big
from ..data.toy import make_toy_data
from ..metrics.rate_distortion import gap_db, gaussian_rd_distortion
from ..metrics.vectors import code_statistics, reconstruction_error, snr_db
from ..quantizers import build_quantizer, check_quantizer_fits, quantizer_terms
from ..training import fit, gradient_optimizers, optimizer_spec
from .complexity import complexity_metrics
from .curves import StepCurve


def validate(cfg: Mapping[str, Any]) -> None:
    d = cfg["dataset"]
    if d["name"] != "toy":
        raise ConfigError(f"experiment=toy needs dataset=toy, got dataset={d['name']!r}")
    check_positive(d, "dataset", "dim", "num_train", "num_test")
    if d["kind"] == "correlated":
        check_range("dataset.rho", d["rho"], -1, 1, lo_open=True, hi_open=True)
    if d["kind"] == "lowrank":
        check_range("dataset.rank", d["rank"], 1, int(d["dim"]))
        check_seed("dataset.mixing_seed", d["mixing_seed"])
    check_quantizer_fits(cfg, int(d["dim"]), "dataset.dim")
    optimizer_spec(cfg["optimizer"]).check_data(cfg, int(d["num_train"]), f"dataset.num_train={d['num_train']}")
    refuse_if_too_big(estimate_memory(cfg))
    if d["fresh_batches"] and not optimizer_spec(cfg["optimizer"]).gradient:
        raise ConfigError(f"dataset.fresh_batches=true needs a gradient optimizer ({' or '.join(gradient_optimizers())}); "
                          f"optimizer={cfg['optimizer']['name']} fits the fixed dataset.num_train vectors "
                          f"(set dataset.fresh_batches=false)")


def synchronize(device: torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def estimate_memory(cfg: Mapping[str, Any]) -> dict[str, float]:
    """The run's large allocations (bytes) by the setting that drives each (vqbench.common.memory)."""
    d, o = cfg["dataset"], cfg["optimizer"]
    dim = int(d["dim"])
    r = int(d["rank"]) if d["kind"] == "lowrank" else dim
    per_vector = (r + dim) * F64 + dim * F32  # drawn in float64, kept in float32
    terms = {
        f"dataset.num_train={d['num_train']}": float(d["num_train"]) * per_vector,
        f"dataset.num_test={d['num_test']}": float(d["num_test"]) * (per_vector + 2 * dim * F32),  # + x_hat
        # the source: a Toeplitz covariance and its Cholesky factor (dim^2), or the rank x dim matrix
        f"dataset.dim={dim}": float(dim) * r * F64 * (4 if d["kind"] == "correlated" else 1),
    }
    batch = int(o["batch_size"]) if optimizer_spec(o).gradient else None  # a classical fit draws no batches
    for key, nbytes in quantizer_terms(cfg["quantizer"], dim, batch).items():
        terms[key] = terms.get(key, 0.0) + nbytes
    return terms


def data_files(cfg: Mapping[str, Any]) -> dict[str, Path]:
    """Toy data are generated from the config: no files."""
    return {}


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
    batches = data.batches(device) if d["fresh_batches"] else None
    curve = StepCurve(int(cfg["optimizer"]["steps"]), quantizer.codebook_size)
    train_stats = fit(quantizer, data.train, cfg["optimizer"], device, seed,
                      progress=bool(cfg["progress"]), batches=batches, curve=curve)
    timings["train"] = time.perf_counter() - t0

    test = data.test.to(device)  # the host -> device copy is not encoding: outside the timed window
    synchronize(device)
    t0 = time.perf_counter()
    x_hat, codes = quantizer.quantize(test)
    synchronize(device)  # CUDA kernels run asynchronously: wait for them before reading the clock
    timings["encode"] = time.perf_counter() - t0
    x_hat = x_hat.detach()

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
    curve.write(Path(run_dir), cfg.get("logger", "csv"),
                {"test_mse": metrics["mse"], "test_perplexity": metrics["perplexity_mean"], "test_snr_db": metrics["snr_db"]},
                final_step=int(train_stats.get("steps", 0)))
    return {"metrics": metrics, "timings": timings}
