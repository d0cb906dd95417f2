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
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import ConfigError, check_schema, composition_error_line, validate
from .experiments import experiment_module
from .results import FAILED_FILE, environment, format_table, write_json_atomic
from .schema import register, to_plain

register()  # the typed schema conf/ selects from (also registered when Hydra imports vqbench.conf)

log = logging.getLogger("vqbench")

SUMMARY_COLUMNS = {
    "toy": ["quantizer", "optimizer", "bits", "mse", "mse_per_dim", "snr_db", "rd_gap_db", "perplexity_mean"],
    "ann": ["quantizer", "optimizer", "bits", "recall@1", "recall@10", "recall@100", "mse"],
    "vqvae": ["quantizer", "optimizer", "bits", "psnr", "ssim", "mse"],
}


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Validate, run the experiment, write metrics.json; returns what was written."""
    check_schema(cfg)
    plain = to_plain(cfg)
    device = validate(plain)
    module = experiment_module(plain["experiment"]["name"])
    if hasattr(module, "validate"):
        module.validate(plain)

    start = time.perf_counter()
    out = module.run(plain, run_dir, device)
    out["timings"]["total"] = time.perf_counter() - start
    record = {
        "config": plain,
        "metrics": out["metrics"],
        "timings": out["timings"],
        "environment": environment(device, plain["seed"]),
    }
    write_json_atomic(run_dir / "metrics.json", record)
    return record


@hydra.main(version_base="1.3", config_path="pkg://vqbench.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        record = run(cfg, run_dir)
    except ConfigError as err:
        print(f"vqbench: error: {err}", file=sys.stderr)
        if not in_sweep:
            sys.exit(2)
        # One bad point of a sweep fails alone: its directory says why, the other jobs run.
        record_failure(run_dir, cfg, list(hydra_cfg.overrides.task), err)
        return
    except Exception as err:
        if not in_sweep:
            raise
        logging.getLogger(__name__).exception("job %s failed", hydra_cfg.job.num)
        print(f"vqbench: error: job {hydra_cfg.job.num} failed: {type(err).__name__}: {err}", file=sys.stderr)
        record_failure(run_dir, cfg, list(hydra_cfg.overrides.task), err)
        return
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
    log.info("metrics: %s", run_dir / "metrics.json")


def record_failure(run_dir: Path, cfg: DictConfig, overrides: list[str], err: BaseException) -> None:
    """Write <run_dir>/failed.json: the job's overrides, its config and the one-line error."""
    try:
        config = to_plain(cfg)
    except Exception:  # an interpolation error is itself the failure: keep the unresolved config
        config = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    write_json_atomic(
        run_dir / FAILED_FILE,
        {"overrides": overrides, "error": f"{type(err).__name__}: {err}", "config": config},
    )


def main() -> None:
    # Let composition errors (a value of the wrong type, an unknown key or option) reach us
    # instead of Hydra's multi-line report, so they end as one line with exit status 2.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _hydra_main()
    except (HydraException, OmegaConfBaseException) as err:
        print(f"vqbench: error: {composition_error_line(err)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
