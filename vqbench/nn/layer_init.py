"""How a layer's codebooks start (its ``init`` argument, ``init_from_data(how=...)``): one
function per option, looked up in ``LAYER_INITS`` by the option's value.

Each function sets the codebooks of ``quantizer`` from example vectors x [N, D] (finite,
N >= 1, on the codebooks' device and dtype) with ``seed``; ``where`` names the layer in errors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..quantizers import Quantizer
from ..training.init import initialize_codebooks

KMEANS_INIT_ITERATIONS = 10


def init_random(quantizer: Quantizer, x: torch.Tensor, seed: int, where: str) -> None:
    """Codewords from N(0, (0.01 s)^2), s the std of x (as the CLI's ``optimizer.init=random``)."""
    initialize_codebooks(quantizer, x, "random", torch.Generator().manual_seed(seed))


def init_data(quantizer: Quantizer, x: torch.Tensor, seed: int, where: str) -> None:
    """The quantizer's data initialisation: random vectors of x, residuals for RVQ/AVQ."""
    initialize_codebooks(quantizer, x, "data", torch.Generator().manual_seed(seed))


def init_kmeans(quantizer: Quantizer, x: torch.Tensor, seed: int, where: str) -> None:
    """The quantizer's classical fit to x (10 Lloyd iterations; faiss, loaded then); needs at
    least codebook_size vectors."""
    if x.shape[0] < quantizer.codebook_size:
        raise ValueError(f"{where}: init='kmeans' needs at least codebook_size={quantizer.codebook_size} vectors, "
                         f"got {x.shape[0]}")
    device = quantizer.codebooks.device
    quantizer.fit_kmeans(x.cpu().float().numpy(), KMEANS_INIT_ITERATIONS, 1, seed, False)
    quantizer.to(device)


LAYER_INITS: dict[str, Callable[[Quantizer, torch.Tensor, int, str], None]] = {
    "random": init_random,
    "data": init_data,
    "kmeans": init_kmeans,
}
INITS = tuple(LAYER_INITS)
