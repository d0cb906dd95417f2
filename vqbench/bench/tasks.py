"""The estimator benchmark's tasks: which preset sweeps each (conf/bench/estimators_<task>.yaml),
which metrics its page shows, and its job list, read from the preset itself (so the page's
expected cells are the sweep's jobs, never a second list kept by hand)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from omegaconf import OmegaConf

BENCH_TAG = "estimators"  # tags.bench of every run of the presets (and of the peer runs)


@dataclass(frozen=True)
class Metric:
    key: str  # under metrics
    label: str
    digits: int
    higher_is_better: bool


@dataclass(frozen=True)
class Task:
    name: str  # toy | ann | vqvae
    experiment: str  # config experiment.name of its runs
    title: str
    metrics: tuple[Metric, ...]
    peers: bool  # peer runs exist for this task (toy, VQ-VAE)

    @property
    def preset(self) -> str:
        return f"estimators_{self.name}"


TASKS = {
    "toy": Task("toy", "toy", "Toy task: test MSE per vector (N(0, I), 64 dims)",
                (Metric("mse", "MSE", 3, False),), peers=True),
    "ann": Task("ann", "ann", "ANN task: recall on a SIFT1M-style base (64 bits)",
                (Metric("recall@1", "R@1", 4, True), Metric("recall@10", "R@10", 4, True)), peers=False),
    "vqvae": Task("vqvae", "vqvae", "Autoencoder task: CIFAR-10 VQ-VAE, test PSNR (dB) and SSIM",
                  (Metric("psnr", "PSNR", 2, True), Metric("ssim", "SSIM", 4, True)), peers=True),
}


def task_of(config: Mapping[str, Any]) -> Task | None:
    """The task a run's config belongs to (None: not a run of the estimator benchmark)."""
    tags = config.get("tags") or {}
    if tags.get("bench") != BENCH_TAG:
        return None
    for task in TASKS.values():
        if config.get("experiment", {}).get("name") == task.experiment:
            return task
    return None


def preset_text(task: Task) -> str:
    return resources.files("vqbench.conf").joinpath("bench", f"{task.preset}.yaml").read_text()


@lru_cache(maxsize=None)
def sweep_params(task_name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The preset's ``hydra.sweeper.params`` as (key, values) in sweep order, values expanded
    by Hydra's own override parser (``range(0,3)`` -> 0, 1, 2)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.create(preset_text(TASKS[task_name])).hydra.sweeper.params
    parser = OverridesParser.create()
    out = []
    for key, text in params.items():
        override = parser.parse_override(f"{key}={text}")
        values = tuple(str(v) for v in override.sweep_string_iterator()) if override.is_sweep_override() else (str(text),)
        out.append((str(key), values))
    return tuple(out)


def sweep_values(task_name: str, key: str) -> tuple[str, ...]:
    """The values the preset sweeps ``key`` over; () when it does not sweep it."""
    return dict(sweep_params(task_name)).get(key, ())


def jobs(task_name: str) -> list[dict[str, str]]:
    """The preset's job list in sweep order (Hydra's basic sweeper: the product of the values)."""
    params = sweep_params(task_name)
    keys = [k for k, _ in params]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in params))]


def method_parts(method: str) -> tuple[str, str]:
    """A bench_method option -> (quantizer, optimizer): ``pvq_sf_diveq`` -> (pvq, sf_diveq);
    ``fsq`` -> (fsq, ste) (conf/bench_method/fsq.yaml)."""
    if method == "fsq":
        return "fsq", "ste"
    quantizer, _, optimizer = method.partition("_")
    return quantizer, optimizer


def rates(task_name: str) -> tuple[str, ...]:
    """The rates a task sweeps (quantizer.bits_per_codebook values), or ("",) for one rate."""
    return sweep_values(task_name, "quantizer.bits_per_codebook") or ("",)


@lru_cache(maxsize=None)
def bits_per_vector(task_name: str, rate: str) -> int:
    """Bits per vector of the task's jobs at ``rate`` (num_codebooks x bits_per_codebook of the
    preset's composed config: the experiment presets set M)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = [f"+bench={TASKS[task_name].preset}"] + ([f"quantizer.bits_per_codebook={rate}"] if rate else [])
    GlobalHydra.instance().clear()
    with initialize_config_module("vqbench.conf", version_base=None):
        q = compose("config", overrides=overrides).quantizer
    return int(q.num_codebooks) * int(q.bits_per_codebook)
