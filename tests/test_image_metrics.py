import math

import numpy as np
import pytest
import torch

from vqbench.metrics.images import mse, psnr, psnr_of_mean_mse, ssim


def test_psnr_of_constant_offset():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64) * 0.8
    # MSE = 0.1^2 = 0.01 -> PSNR = 10 log10(1 / 0.01) = 20 dB, for every image.
    got = psnr(x, x + 0.1)
    assert got.shape == (3,)
    assert torch.allclose(got, torch.full((3,), 20.0, dtype=got.dtype), atol=1e-6)
    # data_range 255 with an offset of 5.1 grey levels: 10 log10(255^2 / 5.1^2) = 20 log10(50)
    assert psnr(x * 255, x * 255 + 5.1, data_range=255.0)[0].item() == pytest.approx(20 * math.log10(50), abs=1e-6)


def test_psnr_is_per_image_mean_not_of_pooled_mse():
    x = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    y = x.clone()
    y[0] += 0.1  # 20 dB
    y[1] += 0.01  # 40 dB
    assert psnr(x, y).mean().item() == pytest.approx(30.0, abs=1e-9)
    assert mse(x, y).tolist() == pytest.approx([0.01, 0.0001])


def test_psnr_of_mean_mse_pools_the_error_before_the_logarithm():
    x = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    y = x.clone()
    y[0] += 0.1  # 20 dB on its own
    y[1] += 0.01  # 40 dB on its own
    pooled = psnr_of_mean_mse(mse(x, y).mean().item())
    assert pooled == pytest.approx(10 * math.log10(1 / 0.00505), abs=1e-9)  # 22.97 dB, not the mean 30 dB
    assert pooled < psnr(x, y).mean().item()  # Jensen: never above the per-image mean
    assert psnr_of_mean_mse(0.01) == pytest.approx(20.0) and psnr_of_mean_mse(65.025, 255.0) == pytest.approx(30.0)
    assert psnr_of_mean_mse(0.0) == math.inf
    for bad in (-1e-3, math.nan):
        with pytest.raises(ValueError, match="mean_mse must be >= 0"):
            psnr_of_mean_mse(bad)
    with pytest.raises(ValueError, match="data_range must be > 0"):
        psnr_of_mean_mse(0.01, 0.0)


def test_ssim_identity_is_one():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_ssim_of_constant_images():
    # Flat images: variances and covariance vanish, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 0.3, 0.6
    x = torch.full((1, 3, 16, 16), a)
    y = torch.full((1, 3, 16, 16), b)
    c1 = (0.01) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-6)


def _ssim_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """Direct transcription of Wang et al. (2004): weighted window statistics, window by window."""
    coords = np.arange(11) - 5.0
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01) ** 2, (0.03) ** 2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                px = x[c, i : i + 11, j : j + 11]
                py = y[c, i : i + 11, j : j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx = (w * (px - mx) ** 2).sum()
                vy = (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_hand_computation():
    rng = np.random.default_rng(2)
    x = rng.random((3, 12, 13))
    y = np.clip(0.7 * x + 0.2 + 0.1 * rng.standard_normal(x.shape), 0, 1)
    got = ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item()
    assert got == pytest.approx(_ssim_by_hand(x, y), abs=1e-12)
    assert 0.0 < got < 1.0


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def _ssim_legacy_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """scikit-image < 0.20's float-image default, transcribed window by window: uniform 7x7,
    sample (ddof = 1) variances and covariance, data_range 2, channels averaged."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 6):
            for j in range(x.shape[2] - 6):
                px = x[c, i : i + 7, j : j + 7].ravel()
                py = y[c, i : i + 7, j : j + 7].ravel()
                mx, my = px.mean(), py.mean()
                vx, vy = px.var(ddof=1), py.var(ddof=1)
                cxy = np.cov(px, py, ddof=1)[0, 1]
                values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_legacy_matches_hand_computation_and_differs_from_standard():
    from vqbench.metrics.images import ssim_legacy

    rng = np.random.default_rng(5)
    x = rng.random((3, 10, 9))
    y = np.clip(0.6 * x + 0.25 + 0.15 * rng.standard_normal(x.shape), 0, 1)
    got = ssim_legacy(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item()
    assert got == pytest.approx(_ssim_legacy_by_hand(x, y), abs=1e-12)
    # data_range 2 shrinks nothing in the structure term but quadruples the constants: a
    # different number from the standard SSIM of the same pair, on 11x11-sized images too
    big_x, big_y = rng.random((1, 3, 16, 16)), rng.random((1, 3, 16, 16))
    bx, by = torch.from_numpy(big_x), torch.from_numpy(big_y)
    assert ssim_legacy(bx, by).item() != pytest.approx(ssim(bx, by).item(), abs=1e-3)
    with pytest.raises(ValueError, match="smaller than the 7x7 window"):
        ssim_legacy(torch.zeros(1, 3, 6, 8), torch.zeros(1, 3, 6, 8))


def test_ssim_constants_scale_with_data_range():
    """A constant pair's SSIM is the luminance term alone: its constant is (K1 * data_range)^2."""
    a, b = 40.0, 60.0
    x, y = torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b)
    c1 = (0.01 * 255.0) ** 2
    assert ssim(x, y, data_range=255.0).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)


def test_ssim_accepts_images_the_size_of_the_window_and_checks_both_sides():
    from vqbench.metrics.images import ssim_legacy

    x = torch.rand(2, 3, 11, 11, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0])            # one window position
    assert ssim_legacy(x[..., :7, :7], x[..., :7, :7]).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match=r"\(11, 10\) pixels are smaller than the 11x11 window"):
        ssim(torch.zeros(1, 3, 11, 10), torch.zeros(1, 3, 11, 10))     # too narrow only
    with pytest.raises(ValueError, match=r"\(10, 11\) pixels are smaller than the 11x11 window"):
        ssim(torch.zeros(1, 3, 10, 11), torch.zeros(1, 3, 10, 11))     # too short only
