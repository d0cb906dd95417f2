"""Peer runs of the estimator benchmark: a peer layer (peers.py) trained in vqbench's own loop on
the same data as its counterpart job of the preset, writing a metrics.json of the same shape.

A peer job is (task, peer, setting, bits, seed). Its config is the counterpart's, composed from
the same preset (``+bench=estimators_<task> bench_method=<quantizer>_<counterpart>``), plus a
``peer`` section; so data, training length, batches, learning rate and schedule are the
counterpart's by construction.

* Toy: the toy experiment's data (same seed), the codebook start ours draws (same generator, so
  the batches drawn after it are the same too), Adam at our lr on whatever the peer trains by
  gradient (its EMA updates run inside its forward), loss ||x - out||^2 + D * aux as our raw
  training; test MSE of the peer's own hard quantization.
* VQ-VAE: vqbench's VQ-VAE training (experiments/vqvae_state.Training) with the peer in the
  bottleneck: the loop takes any layer ``latents -> (x_out, codes, aux)``; Adam over encoder,
  decoder and the peer's trainable parameters; evaluated by our hard quantizer holding the
  peer's codebooks (the same nearest-codeword encoding). Not resumable within a run (no
  checkpoint); a campaign resumes job by job.

    python scripts/bench_estimators.py peers --task toy [--chunk I/N]
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..common.atomic import write_json_atomic
from ..common.provenance import code_version, data_record
from ..experiments import experiment_module
from ..run.attempts import job_key, now_utc
from ..run.results import FAILED_FILE, METRICS_FILE, environment, non_finite
from .peers import PEERS, SETTINGS, PeerSpec, build_peer, version
from .tasks import TASKS, Task, rates, sweep_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerJob:
    task: str
    spec: PeerSpec
    setting: str  # defaults | matched
    bits_per_codebook: str
    seed: str

    @property
    def dirname(self) -> str:
        return f"{self.spec.name}-{self.spec.quantizer}-{self.setting}-b{self.bits_per_codebook}-s{self.seed}"

    @property
    def counterpart_method(self) -> str:
        return f"{self.spec.quantizer}_{self.spec.counterpart}"


def peer_jobs(task_name: str) -> list[PeerJob]:
    """Every peer job of a task, seed by seed (as the preset's sweep)."""
    if not TASKS[task_name].peers:
        return []
    return [PeerJob(task_name, spec, setting, bits, seed)
            for seed in sweep_values(task_name, "seed")
            for spec in PEERS
            for setting in SETTINGS
            for bits in rates(task_name)]


def compose_counterpart(job: PeerJob, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved config of the counterpart job of the preset (+ ``overrides``), with the
    ``peer`` section added."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ..run.schema import to_plain

    task = TASKS[job.task]
    GlobalHydra.instance().clear()
    with initialize_config_module("vqbench.conf", version_base=None):
        cfg = compose("config", overrides=[f"+bench={task.preset}", f"bench_method={job.counterpart_method}",
                                           f"quantizer.bits_per_codebook={job.bits_per_codebook}", f"seed={job.seed}",
                                           "progress=false", *overrides])
    plain = to_plain(cfg)
    plain["peer"] = {"name": job.spec.name, "package": job.spec.peer, "version": version(job.spec.peer),
                     "variant": job.spec.variant, "setting": job.setting, "counterpart": job.spec.counterpart}
    return plain


def _validate(cfg: Mapping[str, Any]) -> torch.device:
    from ..run.config import validate

    device = validate(cfg)
    module = experiment_module(cfg["experiment"]["name"])
    if hasattr(module, "validate"):
        module.validate(cfg)
    return device


# ---------------------------------------------------------------------------- toy
def run_toy(cfg: Mapping[str, Any], spec: PeerSpec, setting: str, device: torch.device) -> dict[str, Any]:
    from ..data.toy import make_toy_data
    from ..experiments.toy import synchronize
    from ..quantizers import build_quantizer
    from ..training.gradient import make_adam, make_scheduler
    from ..training.init import initialize_codebooks

    d, o, seed = cfg["dataset"], cfg["optimizer"], int(cfg["seed"])
    dim, steps, batch_size = int(d["dim"]), int(o["steps"]), int(o["batch_size"])
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = make_toy_data(d["kind"], dim, float(d["rho"]), int(d["num_train"]), int(d["num_test"]), seed,
                         rank=int(d["rank"]), mixing_seed=int(d["mixing_seed"]))
    timings["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    quantizer = build_quantizer(cfg["quantizer"], dim)  # ours: the bits, and the start a matched peer copies
    generator = torch.Generator().manual_seed(seed)  # as fit_gradient: the start, then the batches
    train = data.train.to(device=device, dtype=torch.float32)
    scale = train.std().clamp_min(1e-12).item()
    initialize_codebooks(quantizer, train, o["init"], generator)
    layer = build_peer(spec, setting, dim, quantizer.num_codebooks, quantizer.codebook_size, o,
                       start=quantizer.codebooks.detach()).to(device)
    layer.train()
    params = [p for p in layer.parameters() if p.requires_grad]
    opt = make_adam(params, float(o["lr"]) * scale) if params else None
    scheduler = make_scheduler(opt, o["lr_schedule"], steps) if opt is not None else None
    batches = data.batches(device) if d["fresh_batches"] else None
    for _ in range(steps):
        if batches is None:
            batch = train.index_select(0, torch.randint(train.shape[0], (batch_size,), generator=generator).to(device))
        else:
            batch = batches(batch_size).to(device=device, dtype=torch.float32)
        out, _, aux = layer(batch)
        loss = (batch - out).pow(2).sum(1).mean() + aux * dim
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
            opt.step()
            scheduler.step()
    timings["train"] = time.perf_counter() - t0

    test = data.test.to(device)
    layer.eval()
    synchronize(device)
    t0 = time.perf_counter()
    x_hat, codes = layer.hard(test)
    synchronize(device)
    timings["encode"] = time.perf_counter() - t0
    metrics = _toy_metrics(data, quantizer, test, x_hat, codes)
    metrics["train.steps"] = float(steps)
    metrics["train.lr_absolute"] = float(o["lr"]) * scale
    return {"metrics": metrics, "timings": timings, "effective": layer.effective}


def _toy_metrics(data: Any, quantizer: Any, test: torch.Tensor, x_hat: torch.Tensor, codes: torch.Tensor) -> dict[str, float]:
    """The toy task's test metrics of the peer's reconstruction ``x_hat`` and ``codes`` (as the toy experiment's)."""
    from ..metrics.rate_distortion import gap_db, gaussian_rd_distortion
    from ..metrics.vectors import code_statistics, reconstruction_error, snr_db

    bound = gaussian_rd_distortion(data.eigenvalues, quantizer.bits)
    metrics: dict[str, float] = {"bits": float(quantizer.bits)}
    metrics.update(reconstruction_error(test, x_hat.float()))
    metrics["snr_db"] = snr_db(test, x_hat.float())
    metrics["data_variance"] = float(data.eigenvalues.sum())
    metrics["rd_bound_mse"] = bound
    metrics["rd_gap_db"] = gap_db(metrics["mse"], bound)
    metrics.update(code_statistics(codes, quantizer.codebook_size))
    return metrics


# ---------------------------------------------------------------------------- VQ-VAE
def run_vqvae(cfg: Mapping[str, Any], spec: PeerSpec, setting: str, device: torch.device) -> dict[str, Any]:
    from ..data.cifar import load_images
    from ..experiments.vqvae import final_metrics
    from ..experiments.vqvae_eval import evaluate
    from ..experiments.vqvae_state import Training
    from ..training.gradient import make_scheduler

    o, e = cfg["optimizer"], cfg["experiment"]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_images(cfg["dataset"], int(cfg["seed"]), False)
    timings["data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    training = Training(cfg, data, device)  # our model, our codebook start (from the untrained latents)
    q = training.quantizer
    layer = build_peer(spec, setting, q.dim, q.num_codebooks, q.codebook_size, o,
                       start=q.codebooks.detach().clone()).to(device)
    training.layer = layer  # the loop calls model(x, layer) and layer.after_step(batches_left=...)
    params = [p for name, p in training.model.named_parameters() if not name.startswith("quantizer.")]
    params += [p for p in layer.parameters() if p.requires_grad]
    training.optimizer = torch.optim.Adam(params, lr=float(o["lr"]))
    training.scheduler = make_scheduler(training.optimizer, o["lr_schedule"], training.total_steps)
    timings["setup"] = time.perf_counter() - t0
    timings["train"] = timings["eval"] = 0.0
    while training.epoch < training.epochs:
        t0 = time.perf_counter()
        stats = training.train_epoch(data.train, False)
        train_time = time.perf_counter() - t0
        training.train_seconds += train_time
        timings["train"] += train_time
        with torch.no_grad():  # evaluate by our hard quantizer holding the peer's codebooks
            q.codebooks.data.copy_(layer.codebooks().to(q.codebooks))
        t0 = time.perf_counter()
        test = evaluate(training.model, data.test, int(e["eval_batch_size"]), device)
        timings["eval"] += time.perf_counter() - t0
        training.epoch += 1
        training.history.append({"epoch": training.epoch, **stats, **{f"test_{k}": v for k, v in test.items()},
                                 "train_seconds": train_time})
        log.info("peer %s epoch %d/%d: test PSNR %.2f dB", spec.name, training.epoch, training.epochs, test["psnr"])
    return {"metrics": final_metrics(training, data), "timings": timings, "effective": layer.effective}


RUNNERS = {"toy": run_toy, "vqvae": run_vqvae}


# ---------------------------------------------------------------------------- jobs
def finished_record(path: Path) -> dict[str, Any] | None:
    import json

    try:
        record = json.loads((path / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("config"), dict) else None


def _without_effective(config: Mapping[str, Any]) -> dict[str, Any]:
    """A peer record's config as composed (``peer.effective`` is added after the run)."""
    peer = {k: v for k, v in (config.get("peer") or {}).items() if k != "effective"}
    return {**config, "peer": peer}


def run_job(job: PeerJob, out_dir: Path, overrides: Sequence[str] = (), resume: bool = True) -> str:
    """Run one peer job into ``out_dir/<job>/``: "skipped" (its record is there, same config and
    results version), "finished" or "failed" (failed.json holds the error)."""
    cfg = compose_counterpart(job, overrides)
    job_dir = out_dir / job.dirname
    if resume:
        old = finished_record(job_dir)
        if (old is not None and job_key(_without_effective(old["config"])) == job_key(cfg)
                and (old.get("code") or {}).get("results_version") == code_version()["results_version"]):
            return "skipped"
    job_dir.mkdir(parents=True, exist_ok=True)
    try:
        device = _validate(cfg)
        if cfg.get("threads") is not None:
            torch.set_num_threads(int(cfg["threads"]))
        code = code_version()
        start = time.perf_counter()
        torch.manual_seed(int(cfg["seed"]))
        out = RUNNERS[job.task](cfg, job.spec, job.setting, device)
        out["timings"]["total"] = time.perf_counter() - start
        bad = non_finite(out["metrics"])
        if bad:
            raise ValueError(f"non-finite metrics: {', '.join(bad[:4])}")
        module = experiment_module(cfg["experiment"]["name"])
        cfg["peer"]["effective"] = out.pop("effective")
        record = {"config": cfg, "metrics": out["metrics"], "timings": out["timings"],
                  "environment": environment(device, int(cfg["seed"])), "code": code,
                  "data": data_record(module.data_files(cfg)), "finished_at": now_utc()}
        write_json_atomic(job_dir / METRICS_FILE, record)
        (job_dir / FAILED_FILE).unlink(missing_ok=True)
        return "finished"
    except Exception as err:  # one job's failure is recorded; the others still run
        write_json_atomic(job_dir / FAILED_FILE, {"config": cfg, "error": f"{type(err).__name__}: {err}",
                                                  "traceback": traceback.format_exc(), "finished_at": now_utc()})
        log.error("peer job %s failed: %s", job.dirname, err)
        return "failed"


def run_peer_jobs(task: Task, out_dir: Path, chunk: tuple[int, int] | None = None, overrides: Sequence[str] = (),
                  resume: bool = True, echo=print) -> dict[str, int]:
    """Run the task's peer jobs (slice ``chunk`` = (I, N) of them: jobs I-1, I-1+N, ...)."""
    jobs = peer_jobs(task.name)
    if chunk is not None:
        jobs = jobs[chunk[0] - 1 :: chunk[1]]
    counts = {"finished": 0, "skipped": 0, "failed": 0}
    for job in jobs:
        t0 = time.perf_counter()
        outcome = run_job(job, out_dir, overrides, resume)
        counts[outcome] += 1
        echo(f"peers {task.name}: {job.dirname}: {outcome} ({time.perf_counter() - t0:.1f} s)")
    return counts
