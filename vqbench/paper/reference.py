"""The published numbers of the paper, one `Figure` per plotted panel.

M. H. Vali and T. Bäckström, "Stochastic Optimization of Vector Quantization Methods in
Application to Speech and Image Processing", ICASSP 2023, figures 2-6. The values are the
plotted data behind those figures, as released by the authors beside the paper, transcribed
without change into `published_toy` (Figs. 2, 3) and `published_apps` (Figs. 4-6).

Methods: "avq", "rvq", "pvq" are the paper's proposed (NSVQ-trained) quantizers; "avq_baseline",
"pvq_baseline", "rvq_baseline" its classical baselines (Fig. 5: additive quantization and product
quantization; Fig. 6a: residual VQ). Metrics: "mse_paper" (the paper's toy-MSE units, see
`vqbench.paper.conventions`), "ssim", "psnr" (dB), "log10_wmops_paper" (log10 of the paper's
WMOPS, see `vqbench.paper.complexity`), "recall" (recall@T).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .published_apps import APPLICATIONS
from .published_toy import TOY

METHODS = ("avq", "rvq", "pvq", "avq_baseline", "pvq_baseline", "rvq_baseline")
METRICS = ("mse_paper", "ssim", "psnr", "log10_wmops_paper", "recall")


@dataclass(frozen=True)
class Series:
    """One curve: the mean over the authors' runs and its quantile band (None where not given)."""

    method: str
    mean: tuple[float, ...]
    low: tuple[float, ...] | None
    high: tuple[float, ...] | None


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    x_name: str  # "bits" (bits per vector) or "T" (recall@T)
    x: tuple[int, ...]
    metric: str
    series: dict[str, Series]
    data: str  # what data the paper ran on


# name -> (title, x_name, metric, data)
_META: dict[str, tuple[str, str, str, str]] = {
    "fig2a": ("Fig. 2a: MSE vs bitrate, correlated toy data", "bits", "mse_paper",
              "toy correlated Gaussian, 64 dims of rank 16 (x = z A, fitted: results/paper/toy_model_fit.md)"),
    "fig2b": ("Fig. 2b: MSE vs bitrate, uncorrelated toy data", "bits", "mse_paper",
              "toy uncorrelated Gaussian N(0, I), 64 dims"),
    "fig3_64": ("Fig. 3: MSE vs bitrate, uncorrelated toy data, 64 dims", "bits", "mse_paper",
                "toy uncorrelated Gaussian N(0, I), 64 dims"),
    "fig3_128": ("Fig. 3: MSE vs bitrate, uncorrelated toy data, 128 dims", "bits", "mse_paper",
                 "toy uncorrelated Gaussian N(0, I), 128 dims"),
    "fig3_256": ("Fig. 3: MSE vs bitrate, uncorrelated toy data, 256 dims", "bits", "mse_paper",
                 "toy uncorrelated Gaussian N(0, I), 256 dims"),
    "fig4a": ("Fig. 4a: SSIM vs bitrate, CIFAR-10 VQ-VAE", "bits", "ssim",
              "CIFAR-10 test images through a VQ-VAE whose latent vectors are quantized"),
    "fig4b": ("Fig. 4b: PSNR vs bitrate, CIFAR-10 VQ-VAE", "bits", "psnr",
              "CIFAR-10 test images through a VQ-VAE whose latent vectors are quantized"),
    "fig4c": ("Fig. 4c: encoding complexity vs bitrate, CIFAR-10 VQ-VAE", "bits", "log10_wmops_paper",
              "VQ-VAE latent vectors, 64 dims, AVQ beam width 16 (counted, not measured)"),
    "fig5": ("Fig. 5: recall@T on SIFT1M, 64 bits", "T", "recall",
             "SIFT1M (128 dims), 64 bits per vector, proposed (NSVQ) beside classical AQ and PQ"),
    "fig6a": ("Fig. 6a: RVQ recall@T on SIFT1M", "T", "recall",
              "SIFT1M (128 dims), RVQ 64 bits per vector, NSVQ beside classical RVQ"),
    "fig6b": ("Fig. 6b: encoding complexity vs bitrate, SIFT1M", "bits", "log10_wmops_paper",
              "SIFT descriptors, 128 dims (counted, not measured)"),
}


def _series(method: str, parts: dict[str, tuple[float, ...]]) -> Series:
    return Series(method=method, mean=tuple(parts["mean"]), low=parts.get("low"), high=parts.get("high"))


def _build(raw: dict[str, dict[str, Any]]) -> dict[str, Figure]:
    figures = {}
    for name, entry in raw.items():
        title, x_name, metric, data = _META[name]
        series = {m: _series(m, parts) for m, parts in entry.items() if m != "x"}
        figures[name] = Figure(name, title, x_name, tuple(entry["x"]), metric, series, data)
    return figures


FIGURES: dict[str, Figure] = _build({**TOY, **APPLICATIONS})


def figure(name: str) -> Figure:
    """The published figure `name`; an unknown name is a ValueError that lists the known ones."""
    try:
        return FIGURES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown paper figure {name!r}; known: {', '.join(FIGURES)}") from None


def copied_bands(fig: Figure) -> dict[tuple[str, str], str]:
    """Published quantile bands that are a copy of another series' band: {(method, "low"|"high"):
    the method it equals}. A band equal value for value to another series' band (either side) cannot
    be both series' own; it is kept for the series whose mean lies nearest to it and marked a copy
    for the others (Fig. 5: the PVQ upper band is RVQ's, above PVQ's own mean by ~0.05 at T = 1)."""
    bands = [(m, side, getattr(s, side)) for m, s in fig.series.items() for side in ("low", "high")
             if getattr(s, side) is not None]
    groups: dict[tuple[float, ...], list[tuple[str, str]]] = {}
    for method, side, values in bands:
        groups.setdefault(tuple(values), []).append((method, side))
    out: dict[tuple[str, str], str] = {}
    for values, owners in groups.items():
        if len({m for m, _ in owners}) < 2:
            continue

        def distance(owner: tuple[str, str]) -> float:
            return sum(abs(v - m) for v, m in zip(values, fig.series[owner[0]].mean))

        ranked = sorted(owners, key=distance)
        keep = ranked[0] if distance(ranked[0]) < distance(ranked[1]) else None  # a tie: none is known
        for owner in owners:
            if owner != keep:
                out[owner] = keep[0] if keep else next(m for m, _ in owners if m != owner[0])
    return out
