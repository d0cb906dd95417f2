"""The `vqbench` command: Hydra composes conf/ into one config, which is validated, then
dispatched to the experiment; its metrics land in <run dir>/metrics.json and a table row.

    vqbench                                   # toy experiment, RVQ + NSVQ
    vqbench experiment=ann quantizer=avq dataset.root=/data/sift
    vqbench -m quantizer=rvq,pvq,avq quantizer.bits_per_codebook=3,5
    vqbench --cfg job                         # print the composed config
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..common.atomic import write_json_atomic
from ..common.errors import RunFailed
from ..common.malloc import keep_freed_memory
from ..common.provenance import code_version, data_record
from ..common.threads import set_threads
from ..experiments import experiment_module
from ..training import optimizer_spec
from . import attempts, logfile, rundir
from .config import ConfigError, check_schema, composition_error_line, validate
from .results import FAILED_FILE, METRICS_FILE, environment, format_table, non_finite
from .schema import register, to_plain

register()  # the typed schema conf/ selects from (also registered when Hydra imports vqbench.conf)

log = logging.getLogger("vqbench")

SUMMARY_COLUMNS = {
    "toy": ["quantizer", "optimizer", "bits", "mse", "mse_per_dim", "snr_db", "rd_gap_db", "perplexity_mean"],
    "ann": ["quantizer", "optimizer", "bits", "recall@1", "recall@10", "recall@100", "mse"],
    "vqvae": ["quantizer", "optimizer", "bits", "psnr", "ssim", "mse"],
}


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Validate, run the experiment, write metrics.json; returns what was written.

    A run whose metrics come out NaN or infinite writes no metrics.json: its record goes
    to failed.json (non-finite values as null) and RunFailed is raised.
    """
    check_schema(cfg)
    plain = to_plain(cfg)
    device = validate(plain)
    if plain.get("threads") is not None or not _threads_shared:
        set_threads(plain)
    module = experiment_module(plain["experiment"]["name"])
    if hasattr(module, "validate"):
        module.validate(plain)

    code = code_version()  # read before the work: the code this process imported
    start = time.perf_counter()
    out = module.run(plain, run_dir, device)
    out["timings"]["total"] = time.perf_counter() - start
    record = {
        "config": plain,
        "metrics": out["metrics"],
        "timings": out["timings"],
        "environment": environment(device, plain["seed"]),
        "code": code,
        "data": data_record(module.data_files(plain)),  # after the run: a download may have fetched them
        "finished_at": attempts.now_utc(),
    }
    bad = non_finite(record["metrics"])
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        gradient = optimizer_spec(plain["optimizer"]).gradient or plain["experiment"]["name"] == "vqvae"
        hint = "training diverged or the data holds NaN/Inf (try a smaller optimizer.lr)" if gradient else \
            "the data holds NaN/Inf or values too large for float32"
        raise NonFiniteMetrics(
            f"non-finite metrics ({shown}): {hint}; no {METRICS_FILE} written, record in {run_dir / FAILED_FILE}",
            record,
        )
    write_json_atomic(run_dir / METRICS_FILE, record)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)  # an earlier failure in this directory is over
    return record


class NonFiniteMetrics(RunFailed):
    """Metrics came out NaN/inf; ``record`` is what metrics.json would have held."""

    def __init__(self, message: str, record: dict[str, Any]):
        super().__init__(message)
        self.record = record


def execute(cfg: DictConfig, run_dir: Path, *, in_sweep: bool = False, overrides: list[str] | None = None,
            job: Any = None) -> int:
    """Run one job and return its exit status: 0, or 2 after a one-line error on stderr.

    The run directory is locked for the job (see rundir.py). A failed job puts back the
    .hydra/ files its directory had before; in a sweep it also leaves failed.json and
    returns 0 so the other jobs run (sweep.SweepSummary reports it). Unexpected exceptions
    propagate in a single run (a traceback is a bug); in a sweep they fail that job alone.

    In a sweep with ``resume=true`` a job whose directory already holds its finished record
    (attempts.finished_record: same resolved config) is skipped; any other sweep job that runs
    in a directory holding an earlier record moves it to metrics.superseded.json first, so the
    directory's result is always its final attempt.
    """
    try:
        rundir.acquire(run_dir)
    except (rundir.RunDirBusy, OSError) as err:
        print(f"vqbench: error: {err}", file=sys.stderr)
        return 0 if in_sweep else 2  # the live run owns that directory: write nothing there
    try:
        if in_sweep and skip_finished(cfg, run_dir, job):
            return 0
        record = run(cfg, run_dir)
    except (ConfigError, RunFailed, OSError) as err:
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        print(f"vqbench: error: {err}", file=sys.stderr)
        rundir.restore_hydra(run_dir, clean_fresh=not in_sweep and not isinstance(err, NonFiniteMetrics))
        if isinstance(err, NonFiniteMetrics):  # keep the numbers (null where non-finite)
            record_failure(run_dir, cfg, overrides or [], err, err.record)
        elif in_sweep:
            record_failure(run_dir, cfg, overrides or [], err)
        return 0 if in_sweep else 2
    except Exception as err:
        rundir.restore_hydra(run_dir)
        if not in_sweep:
            raise
        logging.getLogger(__name__).exception("job %s failed", job)
        print(f"vqbench: error: job {job} failed: {type(err).__name__}: {err}", file=sys.stderr)
        record_failure(run_dir, cfg, overrides or [], err)
        return 0
    finally:
        rundir.release(run_dir)
    rundir.forget_hydra(run_dir)
    name = record["config"]["experiment"]["name"]
    row = {
        "quantizer": record["config"]["quantizer"]["name"],
        "optimizer": record["config"]["optimizer"]["name"],
        **record["metrics"],
        "seconds": record["timings"]["total"],
    }
    # Through logging: the terminal and the run's log file (<run dir>/cli.log) both get them.
    log.info("timings (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in record["timings"].items()))
    log.info("results:\n%s", format_table([row], SUMMARY_COLUMNS.get(name, ["quantizer", "optimizer", "bits"]) + ["seconds"]))
    log.info("metrics: %s", run_dir / METRICS_FILE)
    return 0


@hydra.main(version_base="1.3", config_path="pkg://vqbench.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    share_cores(hydra_cfg)
    keep_freed_memory()  # per job process: joblib workers do not pass through main()
    logfile.watch()  # cli.log that cannot be written: one line at the end, not a traceback per record
    run_dir = Path(hydra_cfg.runtime.output_dir)
    status = execute(cfg, run_dir, in_sweep=in_sweep, overrides=list(hydra_cfg.overrides.task),
                     job=run_dir.name if in_sweep else None)  # its directory in the sweep
    log_problem = logfile.failure()
    if log_problem and not status:  # a failed run has said its one line already
        kept = f"; the run finished, its results are in {run_dir / METRICS_FILE}" \
            if (run_dir / METRICS_FILE).exists() else ""
        print(f"vqbench: error: {log_problem}{kept}", file=sys.stderr)
        status = 0 if in_sweep else 2  # a sweep job's finished results count; the other jobs run
    if status:
        sys.exit(status)


_threads_shared = False  # a joblib sweep split the cores among its jobs (share_cores)


def share_cores(hydra_cfg: DictConfig) -> None:
    """Jobs of a local parallel sweep (joblib launcher) split the cores instead of each taking all;
    an OMP_NUM_THREADS set by the caller (scripts/reproduce_paper.sh sets 1) is kept instead."""
    global _threads_shared
    launcher = hydra_cfg.launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return
    _threads_shared = True
    cores = os.cpu_count() or 1
    n_jobs = int(launcher.get("n_jobs") or -1)
    n_jobs = cores if n_jobs <= 0 else n_jobs
    asked = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(asked) if asked.isdigit() and int(asked) > 0 else max(1, cores // n_jobs)
    torch.set_num_threads(threads)
    import faiss

    faiss.omp_set_num_threads(threads)


def skip_finished(cfg: DictConfig, run_dir: Path, job: Any) -> bool:
    """True when this sweep job need not run (resume=true and its finished record is there);
    otherwise an earlier record in ``run_dir`` is set aside (attempts.SUPERSEDED_FILE)."""
    try:
        plain = to_plain(cfg)
    except Exception:  # an invalid config: run() reports it
        return False
    if plain.get("resume") and attempts.finished_record(run_dir, plain, _current_data(plain)) is not None:
        rundir.restore_hydra(run_dir)  # the directory stays exactly as the finished run left it
        log.info("vqbench: job %s skipped: %s holds its finished run (same config)", job, run_dir / METRICS_FILE)
        return True
    previous = run_dir / METRICS_FILE
    if previous.exists():
        os.replace(previous, run_dir / attempts.SUPERSEDED_FILE)
        log.info("vqbench: job %s runs again; the earlier record is now %s", job, run_dir / attempts.SUPERSEDED_FILE)
    return False


def _current_data(plain: dict[str, Any]) -> dict[str, Any] | None:
    """The checksums of the files the job would read, or None when one cannot be read."""
    try:
        return data_record(experiment_module(plain["experiment"]["name"]).data_files(plain))
    except (OSError, ConfigError, KeyError, ValueError):
        return None


def record_failure(run_dir: Path, cfg: DictConfig, overrides: list[str], err: BaseException,
                   record: dict[str, Any] | None = None) -> None:
    """Write <run_dir>/failed.json: the job's overrides, its config and the one-line error
    (plus the run's record, when it got as far as metrics)."""
    try:
        config = to_plain(cfg)
    except Exception:  # an interpolation error is itself the failure: keep the unresolved config
        config = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    try:
        write_json_atomic(
            run_dir / FAILED_FILE,
            {"overrides": overrides, "error": f"{type(err).__name__}: {err}", "config": config, **(record or {}),
             "finished_at": attempts.now_utc()},
        )
    except (OSError, RunFailed) as write_err:  # e.g. the disk that made the job fail is still full
        print(f"vqbench: error: cannot record the failure in {run_dir / FAILED_FILE}: {write_err}", file=sys.stderr)


def register_sweeper() -> None:
    """Make conf/hydra/sweeper/chunked.yaml's class known to Hydra: its plugin scan does not see
    packages of an editable install (pip install -e .), so the class is registered by hand."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # first: its scan re-executes Hydra's modules, BasicSweeper included
    from hydra_plugins.vqbench_sweeper import ChunkSweeper  # so this subclasses the class Hydra uses

    plugins.register(ChunkSweeper)


def main() -> None:
    # Let composition errors (a value of the wrong type, an unknown key or option) reach us
    # instead of Hydra's multi-line report, so they end as one line with exit status 2.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    register_sweeper()
    try:
        _hydra_main()
    except (HydraException, OmegaConfBaseException) as err:
        print(f"vqbench: error: {composition_error_line(err)}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # Hydra could not write the run's .hydra/*.yaml (disk full, file-size limit)
        print(f"vqbench: error: {rundir.abandon_all(err)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
