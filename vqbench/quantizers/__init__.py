"""Quantizers: hard encode/decode for VQ, RVQ, PVQ and AVQ (no training logic)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .avq import AVQ
from .base import Quantizer
from .pvq import PVQ
from .rvq import RVQ
from .vq import VQ

QUANTIZERS: dict[str, type[Quantizer]] = {"vq": VQ, "rvq": RVQ, "pvq": PVQ, "avq": AVQ}


def build_quantizer(qcfg: Mapping[str, Any], dim: int) -> Quantizer:
    """A quantizer for `dim`-dimensional data from a `quantizer` config section."""
    name = qcfg["name"]
    if name not in QUANTIZERS:
        raise ValueError(f"quantizer.name must be one of {sorted(QUANTIZERS)}, got {name!r}")
    kwargs = dict(num_codebooks=int(qcfg["num_codebooks"]), bits_per_codebook=int(qcfg["bits_per_codebook"]))
    if name == "avq":
        kwargs["beam_width"] = int(qcfg["beam_width"])
    return QUANTIZERS[name](dim, **kwargs)


__all__ = ["AVQ", "PVQ", "QUANTIZERS", "Quantizer", "RVQ", "VQ", "build_quantizer"]
