"""Experiments: each module has `run(cfg, run_dir, device) -> {"metrics", "timings"}` and may
have `validate(cfg)` for checks that need the experiment's data (e.g. its dimension)."""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS = {
    "toy": "vqbench.experiments.toy",
    "ann": "vqbench.experiments.ann",
    "vqvae": "vqbench.experiments.vqvae",
}


def experiment_module(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        from ..common.checks import ConfigError

        raise ConfigError(f"experiment.name must be one of {sorted(EXPERIMENTS)}, got {name!r}")
    return importlib.import_module(EXPERIMENTS[name])
