"""Evidence for Fig. 4b's PSNR convention: ours in each convention against the paper, per method
(a page section; reads only a figure's rows, so any layer of report/ may use it).

The two conventions: the PSNR of the test set's pooled MSE (`psnr_of_mean_mse`, the panel's
ours_mean) and the mean over images of each image's PSNR (the `per_image` extra). The first is
never above the second (Jensen's inequality).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TOLERANCE_DB = 1.0  # the tolerance on Fig. 4b


def psnr_conventions(data: Any) -> list[str]:
    """Per method: over its points with a run and a published value, how far each convention lies
    from the paper (mean and extremes of ours minus paper) and how many points are within the
    tolerance."""
    by_method: dict[str, list[tuple[float, float]]] = {}
    for row in data.rows:
        if not row.n or row.paper is None or math.isnan(row.extra("per_image")):
            continue
        paper = row.paper[0]
        by_method.setdefault(row.method, []).append((row.stat()[0] - paper, row.extra("per_image") - paper))
    if not by_method:
        return []
    out = ["## PSNR conventions", "",
           "ours_mean is the PSNR of the test set's pooled MSE (10 log10(1 / mean MSE)); "
           "ours_per_image_psnr_mean the mean of each image's PSNR, which is never lower. Ours minus the paper "
           f"in each, and the points within {TOLERANCE_DB:g} dB:", "",
           "| method | points | pooled: mean (min, max) | pooled: within | per-image: mean (min, max) | per-image: within |",
           "|---|---|---|---|---|---|"]
    for method, diffs in sorted(by_method.items()):
        pooled, per_image = np.array([d[0] for d in diffs]), np.array([d[1] for d in diffs])
        out.append(f"| {method} | {len(diffs)} | {_spread(pooled)} | {_within(pooled)} | "
                   f"{_spread(per_image)} | {_within(per_image)} |")
    gaps = np.array([d[1] - d[0] for diffs in by_method.values() for d in diffs])
    out += ["", f"The per-image mean lies {gaps.min():.2f}-{gaps.max():.2f} dB above the pooled PSNR at these "
            f"points. The authors' code holds no PSNR; the tolerance uses the pooled convention, which is what "
            f"a script that averages the test loss over the test set and converts it reports; that it is "
            f"theirs is an inference.", ""]
    return out


def _spread(diffs: np.ndarray) -> str:
    return f"{diffs.mean():+.2f} ({diffs.min():+.2f}, {diffs.max():+.2f})"


def _within(diffs: np.ndarray) -> str:
    return f"{int((np.abs(diffs) <= TOLERANCE_DB).sum())} of {diffs.size}"
