"""vqbench: a reference tool for comparing vector quantizers (VQ, RVQ, PVQ, AVQ) trained
by NSVQ, STE or k-means on ANN search, VQ-VAE image compression and Gaussian toy data.

As a library, its quantizers are ``torch.nn.Module`` layers for any model::

    import vqbench
    rvq = vqbench.RVQ(dim=64, num_codebooks=4, codebook_size=256, estimator="nsvq")
    x_hat, codes, aux_loss = rvq(x)      # x [..., 64] -> [..., 64], codes [..., 4]

``VQ``, ``RVQ``, ``PVQ``, ``AVQ`` and ``FSQ`` (finite scalar quantization) return a
:class:`Quantized` ``(x_hat, codes, aux_loss)``; ``ESTIMATORS`` lists the gradient estimators
(``nsvq``, ``ste``, ``rotation``, ``diveq``, ``sf_diveq``, ``gumbel``, ``ema``; add one with
``register_estimator``). They are imported on first use, and building or using a layer loads
torch only (no faiss, Hydra or omegaconf), so ``import vqbench`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAYERS = ("AVQ", "ESTIMATORS", "FSQ", "PVQ", "QuantizerLayer", "Quantized", "RVQ", "VQ")
_TRAINING = ("Estimator", "register_estimator")

if TYPE_CHECKING:  # static type checkers see the real names
    from .nn import AVQ, ESTIMATORS, FSQ, PVQ, RVQ, VQ, Quantized, QuantizerLayer
    from .training import Estimator, register_estimator


def __getattr__(name: str) -> Any:
    if name in _LAYERS:
        from . import nn

        return getattr(nn, name)
    if name in _TRAINING:
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module 'vqbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAYERS, *_TRAINING])


__all__ = ["__version__", "AVQ", "ESTIMATORS", "Estimator", "FSQ", "PVQ", "QuantizerLayer", "Quantized", "RVQ", "VQ",
           "register_estimator"]
