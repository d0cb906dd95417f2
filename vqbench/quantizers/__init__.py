"""Quantizers: VQ, RVQ, PVQ and AVQ. Each class holds everything about its quantizer (config
schema, checks, encode/decode, operation count, classical fit, data init, EMA targets; see
base.py); adding one is a module and a line in QUANTIZERS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common.checks import ConfigError
from .avq import AVQ
from .base import Quantizer, QuantizerConfig
from .pvq import PVQ
from .rvq import RVQ
from .vq import VQ

QUANTIZERS: dict[str, type[Quantizer]] = {cls.name: cls for cls in (VQ, RVQ, PVQ, AVQ)}


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


__all__ = ["AVQ", "PVQ", "QUANTIZERS", "Quantizer", "QuantizerConfig", "RVQ", "VQ", "build_quantizer", "check_quantizer_fits",
           "quantizer_class"]
