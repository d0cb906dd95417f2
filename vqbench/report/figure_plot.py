"""The PNG of a regenerated figure: ours (mean line, quantile band) beside the published mean
(dashed) and band (hatched; a band side known to be copied from another series is left out and the
other side drawn dotted), runs of another mode as open diamonds with error bars, and below it the
difference (MSEs as a ratio in dB). The title names the paper's figure and the data ours used.
The frame (`axes`, `finish`, `save`) is shared with the complexity pages (complexity_page.py)."""

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
from .panels import Panel, PanelKind

COLORS = {"avq": "tab:blue", "rvq": "tab:orange", "pvq": "tab:green"}


def axes() -> tuple[Any, Any, Any]:
    """A new figure with its two axes: the values (top) and the differences to the paper (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    return fig, top, bottom


def finish(fig: Any, top: Any, bottom: Any, panel: Panel, runs: list[dict[str, Any]],
           beside: list[dict[str, Any]]) -> Any:
    """Scales, labels, the title naming our data, legend and grid; returns `fig`."""
    ref = reference_figure(panel.figure)
    if ref.x_name == "T":
        top.set_xscale("log", base=2)
    top.set_ylabel(panel.unit)
    if panel.log_y:
        top.set_yscale("log")
    top.set_title(plot_title(ref.title, runs, beside), fontsize=9)
    top.legend(fontsize=7, ncol=2)
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    bottom.set_xlabel("bits per vector" if ref.x_name == "bits" else "T")
    fig.tight_layout()
    return fig


def save(fig: Any, path: Path) -> None:
    """Write `fig` to `path` as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot(data: FigureData, panel: Panel, path: Path) -> None:
    """Draw the figure (`draw`) and write it to `path` as PNG, atomically."""
    save(draw(data, panel), path)


def draw(data: FigureData, panel: Panel):
    """The matplotlib Figure of a panel of runs (the caller closes it). Published bands are filled
    with the label `_<method> paper band` (hidden from the legend)."""
    import matplotlib.pyplot as plt

    fig, top, bottom = axes()
    toy = panel.kind is PanelKind.TOY
    by_method: dict[str, list[Row]] = defaultdict(list)
    for row in data.rows:
        by_method[row.method].append(row)
    palette = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"][3:])
    for method, mrows in sorted(by_method.items()):
        mrows.sort(key=lambda r: r.x)
        c = COLORS.get(method.split("_")[0] if method in COLORS else method, None) or next(palette, None)
        _draw_ours(top, method, mrows, c)
        beside = _draw_beside(top, data, method, c)
        if any(r.paper for r in mrows):
            _draw_paper(top, method, mrows, c)
            _draw_differences(bottom, mrows, beside, c, toy)
    bottom.axhline(0.0, color="grey", lw=0.8)
    bottom.set_ylabel("ours / paper (dB)" if toy else "ours − paper")
    return finish(fig, top, bottom, panel, data.runs, data.beside_runs)


def _draw_ours(top: Any, method: str, rows: list[Row], c: Any) -> None:
    ours = [(r.x, *r.stat()) for r in rows if r.n]
    if ours:
        xs, mean, lo, hi = map(np.asarray, zip(*ours))
        top.plot(xs, mean, "-o", ms=3, color=c, label=f"{method} (ours)")
        top.fill_between(xs, lo, hi, color=c, alpha=0.2, lw=0)


def _draw_beside(top: Any, data: FigureData, method: str, c: Any) -> list[tuple[float, float, float, float]]:
    """Runs of another mode as open diamonds; returns their (x, mean, low, high)."""
    beside = [(r.x, *r.stat()) for r in sorted(data.beside.values(), key=lambda r: r.x)
              if r.method == method and r.n]
    if beside:
        xs_b, mean_b, lo_b, hi_b = map(np.asarray, zip(*beside))
        top.errorbar(xs_b, mean_b, yerr=[mean_b - lo_b, hi_b - mean_b], fmt="D", ms=6, mfc="none", color=c,
                     capsize=3, label=f"{method} ({data.beside_mode}, ours)")
    return beside


def _draw_paper(top: Any, method: str, rows: list[Row], c: Any) -> None:
    pub = [(r.x, *r.paper) for r in rows if r.paper]
    xs_p = np.asarray([p[0] for p in pub])
    top.plot(xs_p, [p[1] for p in pub], "--", color=c, label=f"{method} (paper)")
    if all(p[2] is not None and p[3] is not None for p in pub):
        top.fill_between(xs_p, [p[2] for p in pub], [p[3] for p in pub], color=c, alpha=0.1, lw=0,
                         hatch="//", label=f"_{method} paper band")
        return
    for side, name in ((2, "low"), (3, "high")):  # a band side unknown (e.g. copied): the known side, unshaded
        known = [(p[0], p[side]) for p in pub if p[side] is not None]
        if known:
            top.plot(*zip(*known), ":", lw=0.8, color=c, label=f"{method} (paper {name} band; other side unknown)")


def _draw_differences(bottom: Any, rows: list[Row], beside: list[tuple[float, float, float, float]], c: Any,
                      toy: bool) -> None:
    diffs = [(r.x, _difference(r.stat()[0], r.paper[0], toy)) for r in rows if r.paper and r.n]
    if diffs:
        bottom.plot(*zip(*diffs), "-o", ms=3, color=c)
    paper_at = {r.x: r.paper[0] for r in rows if r.paper}
    diffs_b = [(x, _difference(m, paper_at[x], toy)) for x, m, _lo, _hi in beside if x in paper_at]
    if diffs_b:
        bottom.plot(*zip(*diffs_b), "D", ms=5, mfc="none", color=c)


def _difference(ours: float, paper: float, ratio_db: bool) -> float:
    """MSEs span decades: compare them as a ratio in dB; other metrics as a difference."""
    return 10.0 * math.log10(ours / paper) if ratio_db else ours - paper
