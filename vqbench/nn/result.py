"""What a quantizer layer's forward returns."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Quantized(NamedTuple):
    """The output of a vqbench quantizer layer on x [..., D].

    * ``x_hat``     [..., D]: the quantized tensor to pass on (in training, carrying the layer's
      estimator's gradients; in eval, the plain hard reconstruction);
    * ``codes``     [..., M] int64: the code of every vector (one index per codebook; FSQ: one
      level index per channel);
    * ``aux_loss``  0-dim tensor: the estimator's auxiliary loss to add to yours (codebook and
      commitment terms, means over elements), zero where the estimator has none.
    """

    x_hat: torch.Tensor
    codes: torch.Tensor
    aux_loss: torch.Tensor
