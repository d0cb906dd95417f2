"""Image-quality metrics for batches of images in [0, data_range]: PSNR and SSIM.

Both return one value per image (shape [N]); callers average them ("per-image mean").
`psnr_of_mean_mse` is the other PSNR convention: one value for a whole test set, from its pooled
MSE (what a script that averages the MSE over the test loader, then converts, reports). By
Jensen's inequality it never exceeds the per-image mean PSNR; on CIFAR-10 reconstructions it is
about 0.5-0.8 dB lower.

SSIM follows Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality assessment: from
error visibility to structural similarity": an 11x11 Gaussian window with sigma = 1.5,
K1 = 0.01, K2 = 0.03, local statistics over every full window position (no padding), the
SSIM map averaged over positions and colour channels.

`ssim_legacy` is the value scikit-image's ``structural_similarity(x, y, multichannel=True)``
gave for float images before v0.20, when the call passed no ``data_range``: a uniform 7x7
window, sample (N - 1) covariances, and data_range = 2 (the span of skimage's float dtype range,
-1..1, whatever the images hold). Papers that report SSIM from that call on [0, 1] images get
this number; vqbench reports it beside the standard one as evidence, not as a replacement.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
LEGACY_WINDOW = 7  # skimage < 0.20: uniform window, sample covariance, data_range 2 for floats
LEGACY_DATA_RANGE = 2.0


def _check_pair(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{name}: images must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"{name}: expected images [N, C, H, W], got shape {tuple(x.shape)}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, [N]."""
    _check_pair(x, y, "mse")
    return (x.double() - y.double()).pow(2).flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, [N]: 10 log10(range^2 / MSE).

    Identical images give +inf.
    """
    _check_pair(x, y, "psnr")
    err = mse(x, y)
    return 10.0 * torch.log10(data_range**2 / err)


def psnr_of_mean_mse(mean_mse: float, data_range: float = 1.0) -> float:
    """PSNR in dB of a test set's pooled MSE (the mean over images of each image's per-pixel MSE,
    images of one size): 10 log10(range^2 / mean_mse). A zero MSE gives +inf."""
    if not mean_mse >= 0.0:  # also catches NaN
        raise ValueError(f"psnr_of_mean_mse: mean_mse must be >= 0, got {mean_mse!r}")
    if data_range <= 0:
        raise ValueError(f"psnr_of_mean_mse: data_range must be > 0, got {data_range!r}")
    return math.inf if mean_mse == 0.0 else 10.0 * math.log10(data_range**2 / mean_mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian window of ``size`` taps."""
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter(img: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of every channel of [N, C, H, W]."""
    c = img.shape[1]
    k = g.numel()
    out = F.conv2d(img, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(out, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Mean SSIM per image, [N] (computed in float64)."""
    _check_pair(x, y, "ssim")
    _check_size(x, window, "ssim")
    return _mean_ssim(x.double(), y.double(), gaussian_window(window, sigma).to(x.device), data_range, 1.0)


def ssim_legacy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image, [N], as scikit-image < 0.20 computed it for float images without a
    data_range (see the module docstring): uniform 7x7 window, sample covariances, data_range 2."""
    _check_pair(x, y, "ssim_legacy")
    _check_size(x, LEGACY_WINDOW, "ssim_legacy")
    box = torch.full((LEGACY_WINDOW,), 1.0 / LEGACY_WINDOW, dtype=torch.float64, device=x.device)
    taps = LEGACY_WINDOW**2
    return _mean_ssim(x.double(), y.double(), box, LEGACY_DATA_RANGE, taps / (taps - 1))


def _check_size(x: torch.Tensor, window: int, name: str) -> None:
    if x.shape[-1] < window or x.shape[-2] < window:
        raise ValueError(f"{name}: images of {tuple(x.shape[-2:])} pixels are smaller than the {window}x{window} window")


def _mean_ssim(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, data_range: float, cov_norm: float) -> torch.Tensor:
    """The SSIM map over every full position of the separable window ``g``, averaged per image;
    ``cov_norm`` scales the (co)variances (1: population, n/(n-1): sample)."""
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x = _filter(x, g)
    mu_y = _filter(y, g)
    var_x = cov_norm * (_filter(x * x, g) - mu_x**2)
    var_y = cov_norm * (_filter(y * y, g) - mu_y**2)
    cov = cov_norm * (_filter(x * y, g) - mu_x * mu_y)
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(1)
