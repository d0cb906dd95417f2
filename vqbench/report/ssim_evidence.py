"""Evidence for Fig. 4a's SSIM convention: the paper's SSIM at our PSNR, beside ours in each
convention (a page section; reads only a figure's rows, so any layer of report/ may use it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..paper.reference import figure as reference_figure


def ssim_at_equal_psnr(data: Any) -> list[str]:
    """Evidence for an SSIM convention: the paper's SSIM at our PSNR (interpolated along the
    paper's own PSNR-SSIM curve of the method, from its Figs. 4a/4b) beside ours in each convention."""
    psnr_ref, ssim_ref = reference_figure("fig4b"), reference_figure("fig4a")
    rows = []
    for row in data.rows:
        ours_psnr = row.extra("psnr")
        if not row.n or row.method not in psnr_ref.series or np.isnan(ours_psnr):
            continue
        curve_p, curve_s = np.asarray(psnr_ref.series[row.method].mean), np.asarray(ssim_ref.series[row.method].mean)
        order = np.argsort(curve_p)
        if not curve_p.min() <= ours_psnr <= curve_p.max():
            continue  # outside the published curve: no interpolation
        paper = float(np.interp(ours_psnr, curve_p[order], curve_s[order]))
        rows.append((row.method, int(row.x), ours_psnr, paper, row.stat()[0] - paper, row.extra("standard") - paper))
    if not rows:
        return []
    out = ["## SSIM at equal PSNR", "",
           "The paper's SSIM at our PSNR (ours_mean of Fig. 4b), read off the paper's own PSNR-SSIM curve of the "
           "method (linear interpolation between its published points), beside ours in each convention:", "",
           "| method | bits | ours PSNR | paper SSIM at that PSNR | legacy minus paper | standard minus paper |",
           "|---|---|---|---|---|---|"]
    out += [f"| {m} | {x} | {p:.2f} | {s:.4f} | {a:+.4f} | {b:+.4f} |" for m, x, p, s, a, b in rows]
    legacy, standard = np.array([r[4] for r in rows]), np.array([r[5] for r in rows])
    out += ["", f"Over these {len(rows)} points the legacy convention differs from the paper's curve by "
            f"{legacy.mean():+.4f} on average (|·| at most {np.abs(legacy).max():.4f}), the standard one by "
            f"{standard.mean():+.4f} (|·| at most {np.abs(standard).max():.4f}).", ""]
    return out
