"""The codebook layers ``vqbench.VQ``, ``RVQ``, ``PVQ`` and ``AVQ``: a :class:`QuantizerLayer`
around the quantizer of the same name, built from the layer's own sizes (any codebook_size >= 2)."""

from __future__ import annotations

import math
from typing import Any

from ..common.checks import ConfigError
from ..quantizers import AVQ as _AVQ
from ..quantizers import PVQ as _PVQ
from ..quantizers import RVQ as _RVQ
from ..quantizers import VQ as _VQ
from ..quantizers import Quantizer
from .layer import QuantizerLayer


def _quantizer(where: str, build, codebook_size: int, **sizes: int) -> Quantizer:
    """A quantizer of ``codebook_size`` codewords per codebook (any size >= 2); errors name the
    layer's own arguments."""
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, int) or not 2 <= codebook_size <= 1 << 16:
        raise ValueError(f"{where}: codebook_size must be an integer in 2..65536, got {codebook_size!r}")
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    bits = max(1, math.ceil(math.log2(codebook_size)))
    try:
        q = build(bits)
    except ConfigError as err:
        text = str(err)
        for ours, theirs in (("num_codebooks", "quantizer.num_codebooks"), ("beam_width", "quantizer.beam_width"),
                             ("dim", "data dimension"), ("codebook_size", "2^bits_per_codebook")):
            text = text.replace(theirs, ours)
        raise ValueError(f"{where}: {text.split(': ', 1)[-1]}") from None
    if q.codebook_size != codebook_size:
        q.resize_codebooks(codebook_size)
    return q


_COMMON_ARGS = """
    Keyword arguments shared by every layer (see :class:`QuantizerLayer` for each):

    * ``estimator="nsvq"``: a name in ``vqbench.ESTIMATORS`` (``"nsvq"``, ``"ste"``, ``"rotation"``,
      ``"diveq"``, ``"sf_diveq"``, ``"gumbel"``, ``"ema"``, or one you registered);
    * ``beta=0.25``: commitment weight (``ste``, ``rotation``, ``ema``);
    * ``replacement=True``, ``replacement_every=100``, ``discard_threshold=0.01``: dead-codeword
      replacement in training (on by default: a randomly started layer otherwise uses few codewords);
    * ``init="random"``: codebook start from the first training batch (``"random"``, ``"data"``, ``"kmeans"``);
    * ``temperature=1.0`` (``gumbel``), ``noise_std=1e-3`` or ``sigma2`` (``diveq``, ``sf_diveq``),
      ``ema_decay=0.99`` (``ema``), ``rotation_form="total"`` (``rotation``: or ``"per_stage"``);
    * ``generator=None``: the estimator's noise; ``**options``: a registered estimator's own keys.

    ``forward(x)`` on x [..., dim] returns :class:`~vqbench.nn.Quantized` ``(x_hat, codes, aux_loss)``
    with codes [..., num_codebooks]; ``encode(x)`` / ``decode(codes)``; ``init_from_data(x)``;
    ``after_step()`` after your optimizer step (else the next forward runs it).
"""


class VQ(QuantizerLayer):
    """Vector quantization: one codebook of ``codebook_size`` codewords (any size >= 2) of
    dimension ``dim``; codes are [..., 1]."""

    def __init__(self, dim: int, codebook_size: int = 256, estimator: str = "nsvq", **kwargs: Any):
        q = _quantizer("vqbench.VQ", lambda bits: _VQ(dim, bits_per_codebook=bits), codebook_size, dim=dim)
        super().__init__(q, estimator, **kwargs)


class RVQ(QuantizerLayer):
    """Residual VQ: ``num_codebooks`` greedy stages of ``codebook_size`` codewords (any size
    >= 2), stage m quantizing what stages 0..m-1 left; num_codebooks * log2(codebook_size) bits."""

    def __init__(self, dim: int, num_codebooks: int = 4, codebook_size: int = 256, estimator: str = "nsvq",
                 **kwargs: Any):
        q = _quantizer("vqbench.RVQ", lambda bits: _RVQ(dim, num_codebooks, bits), codebook_size, dim=dim,
                       num_codebooks=num_codebooks)
        super().__init__(q, estimator, **kwargs)


class PVQ(QuantizerLayer):
    """Product VQ: ``dim`` split into ``num_codebooks`` equal subspaces (``dim`` must be
    divisible by it), one codebook of ``codebook_size`` codewords per subspace."""

    def __init__(self, dim: int, num_codebooks: int = 4, codebook_size: int = 256, estimator: str = "nsvq",
                 **kwargs: Any):
        q = _quantizer("vqbench.PVQ", lambda bits: _PVQ(dim, num_codebooks, bits), codebook_size, dim=dim,
                       num_codebooks=num_codebooks)
        super().__init__(q, estimator, **kwargs)


class AVQ(QuantizerLayer):
    """Additive VQ: x_hat is a sum of one codeword from each of ``num_codebooks`` full-dimension
    codebooks, the codes found by beam search of width ``beam_width`` (Babenko & Lempitsky 2014)."""

    def __init__(self, dim: int, num_codebooks: int = 4, codebook_size: int = 256, beam_width: int = 16,
                 estimator: str = "nsvq", **kwargs: Any):
        q = _quantizer("vqbench.AVQ", lambda bits: _AVQ(dim, num_codebooks, bits, beam_width), codebook_size, dim=dim,
                       num_codebooks=num_codebooks, beam_width=beam_width)
        super().__init__(q, estimator, **kwargs)


for _layer in (VQ, RVQ, PVQ, AVQ):
    _layer.__doc__ = (_layer.__doc__ or "") + "\n" + _COMMON_ARGS
    _layer.__init__.__doc__ = f"Build a {_layer.__name__} layer; see the class docstring for the arguments."
del _layer
