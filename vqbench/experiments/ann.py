"""ANN experiment: recall@T of exact asymmetric-distance search on a quantized base.

Train the quantizer on the learn vectors, encode the base in chunks, then search every
query exactly by ||q - x_hat||^2 over the decoded base (decoded chunk by chunk into a
faiss flat search) and report recall@T (T = 1, 2, 4, ..., 512 and 10, 100, 1000), base
reconstruction error, codebook usage, bits, seconds per phase and peak memory. faiss's
classical quantizers (experiment.baselines) are evaluated by the same code in the same
run, their metrics prefixed ``baseline.<name>.``. The evaluation is vqbench.ann.evaluate, the
files a run leaves vqbench.ann.save; this module checks the config, trains and reports.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..ann.baselines import BASELINES, build_baseline
from ..ann.evaluate import evaluate, torch_codec
from ..ann.faiss_index import IndexSearch
from ..ann.save import save_results
from ..common.checks import ConfigError, check_positive, check_seed
from ..common.memory import F32, refuse_if_too_big
from ..common.options import Search
from ..common.process import peak_rss_mb, reset_peak_rss, timed
from ..data.sift import ANNDataset, ann_files, load_dataset
from ..quantizers import build_quantizer, check_quantizer_fits, quantizer_terms
from ..training import fit, optimizer_spec
from .complexity import complexity_metrics
from .curves import StepCurve

log = logging.getLogger(__name__)

DATASETS = ("sift1m", "sift1m_hdf5")

def validate(cfg: Mapping[str, Any]) -> None:
    """ANN-specific checks; also opens the dataset so missing files fail here in one line."""
    d, e = cfg["dataset"], cfg["experiment"]
    if d["name"] not in DATASETS:
        raise ConfigError(f"experiment=ann needs dataset=sift1m or dataset=sift1m_hdf5, got dataset={d['name']!r}")
    check_positive(d, "dataset", *(k for k in ("max_base", "max_queries", "max_train", "train_size") if k in d),
                   allow_none=True)
    check_positive(e, "experiment", "search_k", "chunk_size")
    check_positive(e, "experiment", "rq_beam_width", "lsq_encode_ils_iters", allow_none=True)
    baselines = e["baselines"]
    for b in baselines:
        if b not in BASELINES:
            raise ConfigError(f"experiment.baselines: unknown baseline {b!r} (choose from {', '.join(BASELINES)})")
    if e["baselines_only"] and not baselines:
        raise ConfigError("experiment.baselines_only=true needs experiment.baselines (e.g. [pq,lsq])")
    if "seed" in d:
        check_seed("dataset.seed", d["seed"], allow_none=True)
    if cfg["quantizer"]["name"] == "fsq" and not e["baselines_only"]:
        raise ConfigError("experiment=ann needs a codebook quantizer (vq, rvq, pvq, avq): quantizer=fsq runs in "
                          "experiment=toy and experiment=vqvae")
    ds = open_dataset(cfg)
    check_quantizer_fits(cfg, ds.dim, f"dataset {d['name']}")
    if not e["baselines_only"]:
        optimizer_spec(cfg["optimizer"]).check_data(cfg, training_size(ds), ds.source("learn"))
    refuse_if_too_big(estimate_memory(cfg, ds))
    if "pq" in baselines or "opq" in baselines:
        M = int(cfg["quantizer"]["num_codebooks"])
        if ds.dim % M:
            raise ConfigError(f"experiment.baselines pq/opq: dimension {ds.dim} is not divisible by "
                              f"quantizer.num_codebooks={M}")
    try:  # finite vectors, ground-truth ids in range: before any training
        ds.check_values()
    except ValueError as err:
        raise ConfigError(f"dataset={d['name']}: {err}") from None


def training_size(ds: ANNDataset) -> int:
    """How many vectors the codebooks train on."""
    limit = getattr(ds, "train_size", None)  # HDF5: a sample of the base
    _, rows = ds.training_rows()
    caps = [rows] + [c for c in (limit, ds.max_train) if c]
    return int(min(caps))


def estimate_memory(cfg: Mapping[str, Any], ds: ANNDataset) -> dict[str, float]:
    """The run's large allocations (bytes) by the setting that drives each (vqbench.common.memory):
    the training vectors (float32 copy), the quantizer, the codes of the base and the result
    lists; the base and queries are read in chunks or memory-mapped."""
    e, q, o = cfg["experiment"], cfg["quantizer"], cfg["optimizer"]
    n = training_size(ds)
    key = "dataset.max_train" if ds.max_train else ds.source("learn")
    terms = {f"{key}={n}" if key.startswith("dataset.") else key: float(n) * ds.dim * F32,
             f"experiment.search_k={e['search_k']}": float(ds.nq) * min(int(e["search_k"]), ds.nb) * 12,
             f"experiment.chunk_size={e['chunk_size']}": float(min(int(e["chunk_size"]), ds.nb)) * ds.dim * F32 * 3}
    batch = int(o["batch_size"]) if optimizer_spec(o).gradient else None
    for k, nbytes in quantizer_terms(q, ds.dim, batch).items():
        terms[k] = terms.get(k, 0.0) + nbytes
    return terms


def open_dataset(cfg: Mapping[str, Any]) -> ANNDataset:
    """The configured dataset; a missing or malformed file becomes a one-line ConfigError."""
    try:
        return load_dataset(cfg["dataset"], seed=int(cfg["seed"]))
    except (OSError, ValueError) as err:
        raise ConfigError(f"dataset={cfg['dataset']['name']}: {err}") from None


def data_files(cfg: Mapping[str, Any]) -> dict[str, Path]:
    """The files this run reads (their checksums go into its record)."""
    return ann_files(cfg["dataset"])


def run(cfg: Mapping[str, Any], run_dir: Path, device: torch.device) -> dict[str, Any]:
    e, q = cfg["experiment"], dict(cfg["quantizer"])
    progress = bool(cfg["progress"])
    search_k = int(e["search_k"])
    chunk = int(e["chunk_size"])
    timings: dict[str, float] = {}

    with timed(timings, "load"):
        ds = open_dataset(cfg)
        xt = ds.get_train()
    if ds.base_is_cut:
        with timed(timings, "groundtruth"):
            ds.get_groundtruth()  # recompute now, outside the timed search
        log.info("ann: base cut to %d of %d vectors (dataset.max_base): ground truth recomputed by exact search",
                 ds.nb, ds.nb_total)
    info = ds.describe()

    if device.type != "cpu":
        log.warning("ann: search (faiss%s) runs on the CPU, not on device=%s; only training and encoding use it",
                    " and the baselines" if e["baselines"] else "", device)
    metrics: dict[str, float] = {"nb": float(info["nb"]), "nq": float(info["nq"]), "ntrain": float(len(xt)),
                                 "gt_recomputed": float(ds.gt_recomputed)}
    if not e["baselines_only"]:
        m, t = _run_quantizer(cfg, q, ds, xt, run_dir, device, search_k, chunk, progress)
        metrics.update(m)
        timings.update(t)

    for name in e["baselines"]:
        bm, bt = run_baseline(name, ds, xt, cfg, search_k=search_k, chunk_size=chunk, progress=progress)
        metrics.update({f"baseline.{name}.{k}": v for k, v in bm.items()})
        timings.update({f"baseline.{name}.{k}": v for k, v in bt.items()})
    return {"metrics": metrics, "timings": timings}


def _run_quantizer(cfg, q, ds, xt, run_dir, device, search_k, chunk, progress):
    """Train our quantizer on the learn vectors and evaluate it: (metrics, timings)."""
    seed = int(cfg["seed"])
    timings: dict[str, float] = {}
    reset_peak_rss()
    torch.manual_seed(seed)
    quantizer = build_quantizer(q, ds.dim).to(device)
    K = quantizer.codebook_size
    if getattr(quantizer, "beam_width", 0) > K:  # a quantizer that searches a beam (AVQ)
        log.warning("quantizer.beam_width=%s > K=%d: using beam width %d", q["beam_width"], K, K)
        quantizer.beam_width = K  # the ANN default is min(K, 64)
    with timed(timings, "train"):
        curve = StepCurve(int(cfg["optimizer"]["steps"]), K)
        train_stats = fit(quantizer, torch.from_numpy(xt), cfg["optimizer"], device, seed, progress=progress,
                          curve=curve)
    quantizer.eval()

    enc, dec = torch_codec(quantizer, device)
    e = cfg["experiment"]
    use_faiss, save = e["search"] == Search.faiss.value, bool(e["save_index"])
    index_search = IndexSearch(quantizer) if use_faiss or save else None
    metrics, t = evaluate(ds, enc, dec, quantizer.num_codebooks, quantizer.codebook_size,
                          search_k=search_k, chunk_size=chunk, progress=progress,
                          index_search=index_search, search_with_index=use_faiss)
    timings.update(t)
    t0 = time.perf_counter()
    save_results(quantizer, index_search.index if save else None, run_dir)
    if save:
        timings["save_index"] = time.perf_counter() - t0
    metrics["beam_width"] = float(getattr(quantizer, "beam_width", 1))
    metrics.update(complexity_metrics(quantizer))
    metrics.update({f"train.{k}": float(v) for k, v in train_stats.items()})
    metrics["peak_rss_mb"] = peak_rss_mb()
    curve.write(Path(run_dir), cfg.get("logger", "csv"),
                {k: metrics[k] for k in ("recall@1", "recall@10", "recall@100", "mse") if k in metrics},
                final_step=int(train_stats.get("steps", 0)))
    return metrics, timings


def run_baseline(name: str, ds: ANNDataset, xt: np.ndarray, cfg: Mapping[str, Any], *,
                 search_k: int, chunk_size: int,
                 progress: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Train one faiss baseline at the configured M and bits, evaluate it like ours."""
    e, q = cfg["experiment"], cfg["quantizer"]
    M, nbits = int(q["num_codebooks"]), int(q["bits_per_codebook"])
    beam = int(e["rq_beam_width"] or q["beam_width"])
    reset_peak_rss()
    codec = build_baseline(name, ds.dim, M, nbits, beam_width=beam,
                           lsq_encode_ils_iters=e["lsq_encode_ils_iters"])
    timings: dict[str, float] = {}
    with timed(timings, "train"):
        log.info("baseline %s: training on %d vectors%s", name, len(xt),
                 " (faiss reports its iterations)" if progress and name in ("rq_beam", "lsq") else "")
        codec.train(xt, verbose=progress and name in ("rq_beam", "lsq"))
    log.info("baseline %s: trained in %.1f s", name, timings["train"])
    metrics, t = evaluate(ds, codec.encode, codec.decode, M, 1 << nbits, search_k=search_k,
                          chunk_size=chunk_size, progress=progress, label=f"{name} ")
    timings.update(t)
    metrics.update(codec.settings())
    metrics["peak_rss_mb"] = peak_rss_mb()
    return metrics, timings
