"""Metrics: vectors (MSE, SNR, code usage), images (PSNR, SSIM), rate-distortion bounds,
encoding operation counts."""
