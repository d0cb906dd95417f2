"""vqbench's quantizers as ``torch.nn.Module`` layers (``vqbench.VQ``, ``RVQ``, ``PVQ``, ``AVQ``,
``FSQ``) and the result they return (:class:`Quantized`)."""

from __future__ import annotations

from ..training.registry import ESTIMATORS
from .codebook_layers import AVQ, PVQ, RVQ, VQ
from .fsq import FSQ
from .layer import QuantizerLayer
from .result import Quantized

__all__ = ["AVQ", "ESTIMATORS", "FSQ", "PVQ", "QuantizerLayer", "Quantized", "RVQ", "VQ"]
