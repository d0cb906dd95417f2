"""The PNG of a regenerated figure: ours (mean line, quantile band) beside the published mean
(dashed) and band (hatched; a band side known to be copied from another series is left out and the
other side drawn dotted), runs of another mode as open diamonds with error bars, and below it the
difference (MSEs as a ratio in dB). The title names the paper's figure and the data ours used."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..common.atomic import atomic_path
from ..paper.reference import figure as reference_figure
from .figure_data import FigureData, Row
from .figure_text import plot_title
from .panels import Panel

COLORS = {"avq": "tab:blue", "rvq": "tab:orange", "pvq": "tab:green"}


def plot(data: FigureData | None, panel: Panel, path: Path, rows: list[list[Any]] | None = None) -> None:
    """Draw the figure (`draw`) and write it to `path` as PNG, atomically."""
    import matplotlib.pyplot as plt

    fig = draw(data, panel, rows)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def draw(data: FigureData | None, panel: Panel, rows: list[list[Any]] | None = None):
    """The matplotlib Figure of a panel (the caller closes it). Published bands are filled with the
    label `_<method> paper band` (hidden from the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = reference_figure(panel.figure)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    if panel.complexity:
        by: dict[str, list] = defaultdict(list)
        for name, bits, _m, _k, _d, _w, ours, conv, pub, _ in rows or []:
            by[name].append((bits, ours, conv, pub))
        for name, pts in sorted(by.items()):
            c = COLORS.get(name, None)
            xs = [p[0] for p in pts]
            top.plot(xs, [p[1] for p in pts], "-o", color=c, label=f"{name} ours")
            top.plot(xs, [p[2] for p in pts], ":s", color=c, label=f"{name} paper convention")
            pub = [(p[0], p[3]) for p in pts if p[3] is not None]
            top.plot([p[0] for p in pub], [p[1] for p in pub], "--x", color=c, label=f"{name} published")
            bottom.plot(xs, [p[2] - p[3] if p[3] is not None else np.nan for p in pts], ":s", color=c)
        bottom.set_ylabel("conv. − published")
    else:
        toy = getattr(panel.points, "toy", False)
        by_method: dict[str, list[Row]] = defaultdict(list)
        for row in data.rows:
            by_method[row.method].append(row)
        palette = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"][3:])
        for method, mrows in sorted(by_method.items()):
            mrows.sort(key=lambda r: r.x)
            c = COLORS.get(method.split("_")[0] if method in COLORS else method, None) or next(palette, None)
            ours = [(r.x, *r.stat()) for r in mrows if r.n]
            if ours:
                xs, mean, lo, hi = map(np.asarray, zip(*ours))
                top.plot(xs, mean, "-o", ms=3, color=c, label=f"{method} (ours)")
                top.fill_between(xs, lo, hi, color=c, alpha=0.2, lw=0)
            beside = [(r.x, *r.stat()) for r in sorted(data.beside.values(), key=lambda r: r.x)
                      if r.method == method and r.n]
            if beside:
                xs_b, mean_b, lo_b, hi_b = map(np.asarray, zip(*beside))
                top.errorbar(xs_b, mean_b, yerr=[mean_b - lo_b, hi_b - mean_b], fmt="D", ms=6, mfc="none", color=c,
                             capsize=3, label=f"{method} ({data.beside_mode}, ours)")
            pub = [(r.x, *r.paper) for r in mrows if r.paper]
            if pub:
                xs_p = np.asarray([p[0] for p in pub])
                top.plot(xs_p, [p[1] for p in pub], "--", color=c, label=f"{method} (paper)")
                if all(p[2] is not None and p[3] is not None for p in pub):
                    top.fill_between(xs_p, [p[2] for p in pub], [p[3] for p in pub], color=c, alpha=0.1, lw=0,
                                     hatch="//", label=f"_{method} paper band")
                else:  # a band side unknown (e.g. copied from another series): draw the known side only, unshaded
                    for side, name in ((2, "low"), (3, "high")):
                        known = [(p[0], p[side]) for p in pub if p[side] is not None]
                        if known:
                            top.plot(*zip(*known), ":", lw=0.8, color=c,
                                     label=f"{method} (paper {name} band; other side unknown)")
                diffs = [(r.x, _difference(r.stat()[0], r.paper[0], toy)) for r in mrows if r.paper and r.n]
                if diffs:
                    bottom.plot(*zip(*diffs), "-o", ms=3, color=c)
                paper_at = {r.x: r.paper[0] for r in mrows if r.paper}
                diffs_b = [(x, _difference(m, paper_at[x], toy)) for x, m, _lo, _hi in beside if x in paper_at]
                if diffs_b:
                    bottom.plot(*zip(*diffs_b), "D", ms=5, mfc="none", color=c)
        bottom.axhline(0.0, color="grey", lw=0.8)
        bottom.set_ylabel("ours / paper (dB)" if toy else "ours − paper")
    if ref.x_name == "T":
        top.set_xscale("log", base=2)
    top.set_ylabel(panel.unit)
    if panel.log_y:
        top.set_yscale("log")
    runs = data.runs if data is not None else []
    beside = data.beside_runs if data is not None else []
    top.set_title(plot_title(ref.title, runs, beside), fontsize=9)
    top.legend(fontsize=7, ncol=2)
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    bottom.set_xlabel("bits per vector" if ref.x_name == "bits" else "T")
    fig.tight_layout()
    return fig


def _difference(ours: float, paper: float, ratio_db: bool) -> float:
    """MSEs span decades: compare them as a ratio in dB; other metrics as a difference."""
    return 10.0 * math.log10(ours / paper) if ratio_db else ours - paper
