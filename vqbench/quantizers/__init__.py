"""Quantizers: VQ, RVQ, PVQ and AVQ, and the codebook-free FSQ (``quantizer=fsq``, toy and VQ-VAE). Each class holds everything about its quantizer (config
schema, checks, encode/decode, operation count, classical fit, data init, EMA targets; see
base.py); adding one is a module and a line in QUANTIZERS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common.checks import ConfigError
from .avq import AVQ
from .base import Quantizer, QuantizerConfig
from .fsq import FSQQuantizer
from .pvq import PVQ
from .rvq import RVQ
from .vq import VQ

QUANTIZERS: dict[str, type[Quantizer]] = {cls.name: cls for cls in (VQ, RVQ, PVQ, AVQ, FSQQuantizer)}  # type: ignore[misc]


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


def check_quantizer_fits(cfg: Mapping[str, Any], dim: int, source: str) -> None:
    """The quantizer's checks that need the data dimension (`source` names where it came from)."""
    quantizer_class(cfg["quantizer"]).check_config(cfg["quantizer"], dim, source)


__all__ = ["AVQ", "FSQQuantizer", "PVQ", "QUANTIZERS", "Quantizer", "QuantizerConfig", "RVQ", "VQ", "build_quantizer", "check_quantizer_fits", "codebook_free",
           "quantizer_class"]
