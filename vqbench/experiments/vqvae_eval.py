"""VQ-VAE evaluation: test metrics with hard quantization and the reconstruction grid."""

from __future__ import annotations

from pathlib import Path

import torch

from ..common.atomic import atomic_path
from ..common.errors import write_failed
from ..common.progress import progress as progress_bar
from ..metrics.images import psnr, ssim, ssim_legacy
from ..metrics.vectors import code_statistics
from ..models.vqvae import VQVAE


def to_unit(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float32 in [0, 1] on ``device``."""
    return images.to(device, non_blocking=True).float().div_(255.0)


@torch.no_grad()
def evaluate(model: VQVAE, images: torch.Tensor, batch_size: int, device: torch.device,
             progress: bool = False) -> dict[str, float]:
    """Test metrics with hard quantization: per-image mean PSNR, SSIM (standard and the legacy
    scikit-image convention, metrics/images.py), MSE, and code statistics."""
    model.eval()
    psnrs, ssims, legacy, mses, codes = [], [], [], [], []
    for start in progress_bar(range(0, images.shape[0], batch_size), desc="evaluate", enabled=progress):
        x = to_unit(images[start : start + batch_size], device)
        out = model(x)
        recon = out.recon.clamp(0.0, 1.0)
        psnrs.append(psnr(recon, x).cpu())
        ssims.append(ssim(recon, x).cpu())
        legacy.append(ssim_legacy(recon, x).cpu())
        mses.append((recon.double() - x.double()).pow(2).flatten(1).mean(1).cpu())
        codes.append(out.codes.cpu())
    model.train()
    metrics = {
        "psnr": torch.cat(psnrs).mean().item(),
        "ssim": torch.cat(ssims).mean().item(),
        "ssim_legacy": torch.cat(legacy).mean().item(),
        "mse": torch.cat(mses).mean().item(),
    }
    metrics.update(code_statistics(torch.cat(codes), model.quantizer.codebook_size))
    return metrics


@torch.no_grad()
def save_grid(model: VQVAE, images: torch.Tensor, path: Path, device: torch.device, per_row: int = 8) -> None:
    """PNG of test images (odd rows) above their reconstructions (even rows), written atomically."""
    from torchvision.utils import save_image

    model.eval()
    x = to_unit(images, device)
    recon = model(x).recon.clamp(0.0, 1.0)
    model.train()
    rows = []
    for start in range(0, x.shape[0], per_row):
        rows += [x[start : start + per_row], recon[start : start + per_row]]
        if rows[-1].shape[0] < per_row:  # pad a short last pair of rows
            pad = per_row - rows[-1].shape[0]
            rows[-2] = torch.cat([rows[-2], rows[-2].new_ones(pad, *x.shape[1:])])
            rows[-1] = torch.cat([rows[-1], rows[-1].new_ones(pad, *x.shape[1:])])
    try:
        with atomic_path(path) as tmp:
            save_image(torch.cat(rows).cpu(), tmp, nrow=per_row, padding=2, pad_value=1.0, format="PNG")
    except OSError as err:
        raise write_failed(path, err) from None


def grid_indices(n: int, count: int) -> torch.Tensor:
    """``count`` test images spread evenly over the (class-ordered) test set."""
    return torch.linspace(0, n - 1, min(n, count)).round().long()
