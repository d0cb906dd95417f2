"""VQ-VAE: convolutional encoder -> quantizer on every latent vector -> convolutional decoder.

Images [B, 3, 32, 32] in [0, 1] are encoded by ``downsamples`` strided 4x4 convolutions and a
stack of residual blocks into a grid [B, latent_dim, 8, 8] (two downsamples); each of the
B*8*8 latent vectors is quantized by the configured quantizer (flattened to [B*H*W, C]) and
the decoder mirrors the encoder with transposed convolutions. Layout after van den Oord et al.
(2017), "Neural Discrete Representation Learning", section 4.2.

In training the latents pass a quantizer layer (vqbench.nn.QuantizerLayer around the model's
quantizer, with the optimizer's estimator: NSVQ's noise substitution, STE, EMA, ...); without
one the decoder sees the plain x_hat (evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..quantizers import Quantizer, build_quantizer


class ResidualBlock(nn.Module):
    """x + Conv1x1(ReLU(Conv3x3(ReLU(x))))."""

    def __init__(self, channels: int, res_channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, res_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(res_channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


MAX_DOWNSAMPLES = 8  # a 256-pixel image down to one latent position


def check_image_shape(downsamples: int, height: int, width: int, source: str) -> None:
    """The network reproduces [H, W] only when both are multiples of 2^downsamples (each strided
    stage halves them, each transposed stage doubles them): refuse other images before training."""
    step = 1 << downsamples
    if height % step or width % step:
        raise ValueError(f"{source}: {height}x{width} images cannot pass through experiment.model.downsamples="
                         f"{downsamples} stride-2 stages and come back the same size (height and width must be "
                         f"multiples of {step}); choose downsamples <= "
                         f"{_largest_fitting(height, width)} or other images")


def _largest_fitting(height: int, width: int) -> int:
    n = 0
    while n < MAX_DOWNSAMPLES and height % (2 << n) == 0 and width % (2 << n) == 0:
        n += 1
    return n


def _stage_channels(hidden: int, downsamples: int) -> list[int]:
    """Output channels of each strided stage: hidden/2 for all but the last, hidden for the last."""
    return [max(1, hidden // 2)] * (downsamples - 1) + [hidden]


class Encoder(nn.Module):
    def __init__(self, in_channels: int, hidden: int, res_channels: int, res_blocks: int, downsamples: int, latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for out in _stage_channels(hidden, downsamples):
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.ReLU()]
            c = out
        layers += [nn.Conv2d(c, hidden, 3, padding=1)]
        layers += [ResidualBlock(hidden, res_channels) for _ in range(res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(hidden, latent_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, out_channels: int, hidden: int, res_channels: int, res_blocks: int, downsamples: int, latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(latent_dim, hidden, 3, padding=1)]
        layers += [ResidualBlock(hidden, res_channels) for _ in range(res_blocks)]
        layers += [nn.ReLU()]
        stages = list(reversed(_stage_channels(hidden, downsamples)))  # input channels of each upsampling
        outs = stages[1:] + [out_channels]
        for i, (c_in, c_out) in enumerate(zip(stages, outs)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
            if i < len(stages) - 1:
                layers += [nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@dataclass
class VQVAEOutput:
    recon: torch.Tensor  # [B, 3, H, W], images in [0, 1] scale (not clamped)
    codes: torch.Tensor  # [B*h*w, M]
    latents: torch.Tensor  # [B*h*w, latent_dim], encoder output before quantization
    aux_loss: torch.Tensor  # scalar: the layer's auxiliary loss (codebook/commitment terms; 0 for nsvq, hard)


# A training quantizer layer: latents [N, C] -> (what the decoder sees [N, C], codes [N, M], aux loss)
Layer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class VQVAE(nn.Module):
    """Encoder, quantizer and decoder; ``forward(images, layer)`` runs all three."""

    def __init__(
        self,
        quantizer: Quantizer,
        hidden_channels: int,
        res_channels: int,
        res_blocks: int,
        downsamples: int,
        image_channels: int = 3,
    ):
        super().__init__()
        if downsamples < 1:
            raise ValueError(f"model.downsamples must be >= 1, got {downsamples}")
        self.quantizer = quantizer
        self.latent_dim = quantizer.dim
        self.downsamples = downsamples
        args = (hidden_channels, res_channels, res_blocks, downsamples, quantizer.dim)
        self.encoder = Encoder(image_channels, *args)
        self.decoder = Decoder(image_channels, *args)

    def latent_grid(self, image_size: int) -> int:
        """Latent positions per side for square images of ``image_size`` pixels."""
        return image_size >> self.downsamples

    # Images are centred around 0 for the networks and shifted back for the output.
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> latent grid [B, C, h, w]."""
        return self.encoder(images - 0.5)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent grid [B, C, h, w] -> images [B, 3, H, W] (about [0, 1])."""
        return self.decoder(z) + 0.5

    def forward(self, images: torch.Tensor, layer: Layer | None = None) -> VQVAEOutput:
        """Reconstruct images [B, 3, H, W] in [0, 1] through a training quantizer `layer` (a
        vqbench.nn.QuantizerLayer around ``self.quantizer``), or through the plain hard quantizer
        (None: evaluation).

        The auxiliary losses are means over latent elements (as in van den Oord et al. 2017), so
        their weight against the reconstruction loss does not grow with the latent dimension."""
        z = self.encode(images)
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(b * h * w, c)
        if layer is None:
            codes = self.quantizer.encode(flat.detach())
            with torch.no_grad():
                zq, aux = self.quantizer.decode(codes), flat.new_zeros(())
        else:
            zq, codes, aux = layer(flat)
        zq = zq.reshape(b, h, w, c).permute(0, 3, 1, 2)
        return VQVAEOutput(self.decode(zq), codes, flat, aux)


def build_vqvae(mcfg: Mapping[str, Any], qcfg: Mapping[str, Any]) -> VQVAE:
    """A VQ-VAE from the ``model`` and ``quantizer`` config sections."""
    quantizer = build_quantizer(qcfg, int(mcfg["latent_dim"]))
    return VQVAE(
        quantizer,
        hidden_channels=int(mcfg["hidden_channels"]),
        res_channels=int(mcfg["res_channels"]),
        res_blocks=int(mcfg["res_blocks"]),
        downsamples=int(mcfg["downsamples"]),
    )
