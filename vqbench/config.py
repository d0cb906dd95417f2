"""Validation of a composed config: every bad setting fails before any work, in one line.

Unknown keys are found against the packaged config files themselves: a key is known if
some file of its group (conf/quantizer/*.yaml, ...) defines it, so the YAML files stay
the single reference of what can be set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import torch
import yaml

from .quantizers import QUANTIZERS
from .quantizers.avq import MAX_TABLE_CODEWORDS

GROUPS = ("dataset", "quantizer", "optimizer", "experiment")
OPTIMIZERS = ("nsvq", "ste", "kmeans")


class ConfigError(ValueError):
    """A setting that cannot run; the message names the field and the value."""


def conf_dir():
    return resources.files("vqbench.conf")


@lru_cache(maxsize=None)
def known_keys(group: str) -> frozenset[str]:
    """Dotted keys defined by any config file of `group` (for experiment: the experiment block)."""
    keys: set[str] = set()
    for entry in conf_dir().joinpath(group).iterdir():
        if not entry.name.endswith(".yaml"):
            continue
        doc = yaml.safe_load(entry.read_text()) or {}
        section = doc.get("experiment", {}) if group == "experiment" else doc
        keys |= _dotted(section)
    return frozenset(keys)


def _dotted(node: Mapping[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in node.items():
        if key == "defaults":
            continue
        name = f"{prefix}{key}"
        out.add(name)
        if isinstance(value, Mapping):
            out |= _dotted(value, name + ".")
    return out


def check_known_keys(cfg: Mapping[str, Any]) -> None:
    top_allowed = {"seed", "device", "progress", "resume", "hydra", *GROUPS}
    for key in cfg:
        if key not in top_allowed:
            raise ConfigError(f"unknown option {key!r} (known: {', '.join(sorted(top_allowed - {'hydra'}))})")
    for group in GROUPS:
        section = cfg.get(group)
        if not isinstance(section, Mapping):
            raise ConfigError(f"{group}: missing config section (choose one with {group}=NAME)")
        for key in sorted(_dotted(section)):
            if key not in known_keys(group):
                raise ConfigError(f"unknown option '{group}.{key}'")


def _int(cfg: Mapping[str, Any], section: str, key: str, lo: int, hi: int | None = None) -> int:
    value = cfg[section][key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{section}.{key} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{section}.{key} must be {bound}, got {value}")
    return value


def check_quantizer(cfg: Mapping[str, Any]) -> None:
    q = cfg["quantizer"]
    if q["name"] not in QUANTIZERS:
        raise ConfigError(f"quantizer.name must be one of {sorted(QUANTIZERS)}, got {q['name']!r}")
    bits = _int(cfg, "quantizer", "bits_per_codebook", 1, 16)
    M = _int(cfg, "quantizer", "num_codebooks", 1)
    _int(cfg, "quantizer", "beam_width", 1)
    if q["name"] == "vq" and M != 1:
        raise ConfigError(f"quantizer=vq uses one codebook: quantizer.num_codebooks must be 1, got {M}")
    if q["name"] == "avq" and M * (1 << bits) > MAX_TABLE_CODEWORDS:
        raise ConfigError(
            f"quantizer=avq: num_codebooks*2^bits_per_codebook = {M * (1 << bits)} codewords exceeds "
            f"{MAX_TABLE_CODEWORDS} (its lookup table would not fit in memory)"
        )


def check_quantizer_fits(cfg: Mapping[str, Any], dim: int, source: str) -> None:
    """Checks that need the data dimension (`source` names where it came from)."""
    q = cfg["quantizer"]
    if q["name"] == "pvq" and dim % int(q["num_codebooks"]) != 0:
        raise ConfigError(
            f"quantizer=pvq: data dimension {dim} ({source}) is not divisible by "
            f"quantizer.num_codebooks={q['num_codebooks']}"
        )


def check_optimizer(cfg: Mapping[str, Any]) -> None:
    o = cfg["optimizer"]
    if o["name"] not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name must be one of {list(OPTIMIZERS)}, got {o['name']!r}")
    _int(cfg, "optimizer", "iterations", 1)
    _int(cfg, "optimizer", "batch_size", 1)
    check_learning_rate(o.get("lr"))
    if o.get("lr_schedule", "constant") not in ("constant", "cosine"):
        raise ConfigError(f"optimizer.lr_schedule must be 'constant' or 'cosine', got {o['lr_schedule']!r}")
    if o.get("init", "data") not in ("data", "random"):
        raise ConfigError(f"optimizer.init must be 'data' or 'random', got {o['init']!r}")
    rep = o.get("replacement") or {}
    if rep:
        _int({"optimizer.replacement": rep}, "optimizer.replacement", "num_batches", 1)
        t = rep.get("discard_threshold")
        if not isinstance(t, (int, float)) or not 0 <= t <= 1:
            raise ConfigError(f"optimizer.replacement.discard_threshold must be in [0, 1], got {t!r}")
        check_replacement_noise(rep.get("noise", 0.01))
        if "enabled" in rep:
            check_flag("optimizer.replacement.enabled", rep["enabled"])
    if "alternations" in o:
        _int(cfg, "optimizer", "alternations", 0)
    if "beta" in o:
        check_beta(o["beta"])


# Small value checks, one per key (self-contained so a typed schema can take them over).
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_learning_rate(lr: Any) -> None:
    """optimizer.lr: a finite number > 0 (inf and nan train nothing but NaN)."""
    if not _is_number(lr) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"optimizer.lr must be a finite positive number, got {lr!r}")


def check_replacement_noise(noise: Any) -> None:
    """optimizer.replacement.noise: a finite relative perturbation >= 0."""
    if not _is_number(noise) or not math.isfinite(noise) or noise < 0:
        raise ConfigError(f"optimizer.replacement.noise must be a finite number >= 0, got {noise!r}")


def check_beta(beta: Any) -> None:
    """optimizer.beta: the STE commitment weight, a finite number >= 0."""
    if not _is_number(beta) or not math.isfinite(beta) or beta < 0:
        raise ConfigError(f"optimizer.beta must be a finite number >= 0, got {beta!r}")


def check_seed(seed: Any) -> None:
    """seed: an integer >= 0 (numpy's generators refuse negative seeds)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")


def check_flag(name: str, value: Any) -> None:
    """A true/false switch (progress, resume, ...): a bool, not a string such as 'maybe'."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda but no CUDA device is available (use device=auto or device=cpu)")
        return torch.device("cuda")
    raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")


def validate(cfg: Mapping[str, Any]) -> torch.device:
    """All experiment-independent checks; returns the device to run on."""
    check_known_keys(cfg)
    check_seed(cfg["seed"])
    for flag in ("progress", "resume"):
        if flag in cfg:
            check_flag(flag, cfg[flag])
    check_quantizer(cfg)
    check_optimizer(cfg)
    return resolve_device(cfg["device"])
