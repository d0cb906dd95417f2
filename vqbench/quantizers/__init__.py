"""Quantizers: VQ, RVQ, PVQ and AVQ, and the codebook-free FSQ (``quantizer=fsq``, toy and VQ-VAE). Each class holds everything about its quantizer (config
schema, checks, encode/decode, operation count, memory terms, classical fit, data init, EMA
targets; see base.py); adding one is a module and a line in BUILTIN_QUANTIZERS, or
``register_quantizer(cls)`` from outside the package (then ``quantizer=<name>`` selects it in
every experiment; its ``Config`` enters the schema, no YAML file needed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..common.checks import ConfigError
from ..common.memory import add_terms, batch_distance_terms
from ..common.options import add_option
from .avq import AVQ, AVQConfig
from .base import Quantizer, QuantizerConfig
from .fsq import FSQQuantizer
from .pvq import PVQ
from .rvq import RVQ
from .vq import VQ

BUILTIN_QUANTIZERS: tuple[type, ...] = (VQ, RVQ, PVQ, AVQ, FSQQuantizer)
QUANTIZERS: dict[str, type[Quantizer]] = {}


def register_quantizer(cls: type) -> type:
    """Make quantizer class `cls` selectable as ``quantizer=<cls.name>`` everywhere (CLI, sweeps,
    experiments); usable as a class decorator."""
    QUANTIZERS[cls.name] = cls
    add_option("quantizer", cls.name, cls.Config)
    return cls


def unregister_quantizer(name: str) -> None:
    """Undo ``register_quantizer`` (tests that register their own quantizer)."""
    QUANTIZERS.pop(name, None)
    add_option("quantizer", name, None)


def codebook_free(quantizer_or_cfg: Any) -> bool:
    """Whether a quantizer (or a ``quantizer`` config section) has no codebooks (FSQ)."""
    cls = quantizer_class(quantizer_or_cfg) if isinstance(quantizer_or_cfg, Mapping) else quantizer_or_cfg
    return bool(getattr(cls, "codebook_free", False))


def quantizer_class(qcfg: Mapping[str, Any]) -> type[Quantizer]:
    name = qcfg["name"]
    if name not in QUANTIZERS:
        raise ConfigError(f"quantizer.name must be one of {sorted(QUANTIZERS)}, got {name!r}")
    return QUANTIZERS[name]


def build_quantizer(qcfg: Mapping[str, Any], dim: int) -> Quantizer:
    """A quantizer for `dim`-dimensional data from a `quantizer` config section."""
    return quantizer_class(qcfg).from_config(qcfg, dim)


def quantizer_terms(qcfg: Mapping[str, Any], dim: int, batch: int | None) -> dict[str, float]:
    """Bytes of the quantizer's large allocations on `dim`-dimensional data (its class's
    ``memory_terms``) plus the distances of a training batch of `batch` vectors to every codeword
    (None: a fit without batches), keyed by the setting that drives each (vqbench.common.memory)."""
    terms = quantizer_class(qcfg).memory_terms(qcfg, dim)
    return add_terms(terms, batch_distance_terms(int(qcfg["num_codebooks"]), 1 << int(qcfg["bits_per_codebook"]),
                                                 dim, batch))


def check_quantizer_fits(cfg: Mapping[str, Any], dim: int, source: str) -> None:
    """The quantizer's checks that need the data dimension (`source` names where it came from)."""
    quantizer_class(cfg["quantizer"]).check_config(cfg["quantizer"], dim, source)


for _cls in BUILTIN_QUANTIZERS:
    register_quantizer(_cls)


@dataclass
class AVQAuthorsConfig(AVQConfig):
    """quantizer=avq_authors: AVQ with the search of the paper's published code (avq_authors.py);
    its records say name=avq, search=authors."""

    search: str = "authors"


add_option("quantizer", "avq_authors", AVQAuthorsConfig)

__all__ = ["AVQ", "BUILTIN_QUANTIZERS", "FSQQuantizer", "PVQ", "QUANTIZERS", "Quantizer", "QuantizerConfig", "RVQ", "VQ",
           "build_quantizer", "check_quantizer_fits", "codebook_free", "quantizer_class", "quantizer_terms",
           "register_quantizer", "unregister_quantizer"]
