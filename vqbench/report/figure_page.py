"""One published figure regenerated: our runs aggregated over seeds beside the published numbers.

    write_figure(panel, runset, out_dir)  ->  out_dir/<figure>.csv, .md, .png

Each point (method, x) is the mean over seeds with a quantile band (`BAND`, 5 %..95 % by
default); the paper's mean and band stand beside it with the difference. Every published
point appears, with n = 0 where we have no run (listed as missing); failed and incomplete
runs that belong to the figure are listed too. The Markdown's sentences come from the
runs' own configs (settings, seeds, command, wall time), never from text typed here.

The steps are modules of their own: figure_collect.py (runs -> rows), figure_table.py (the
table), figure_plot.py (the PNG), figure_markdown.py (the page), figure_index.py (README.md);
complexity panels (counted, no runs) are written by complexity_page.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..common.atomic import write_text_atomic
from ..run.runs import RunSet
from .complexity_page import write_complexity
from .figure_collect import collect
from .figure_markdown import markdown
from .figure_plot import plot
from .figure_table import table
from .panels import Panel, PanelKind
from .tables import to_csv

__all__ = ["collect", "write_figure"]  # collect: scripts/toy_full_protocol.py imports it from here

HIGH_RATE_CSV = "toy_high_rate.csv"  # the 40-bit study (scripts/toy_high_rate_study.sh), if in out_dir
FULL_PROTOCOL_CSV = "toy_full_protocol.csv"  # full-protocol toy points (scripts/toy_full_protocol.py), if in out_dir


def write_figure(panel: Panel, runset: RunSet, out_dir: Path, beside: RunSet | None = None,
                 high_rate: Path | None = None) -> dict[str, Any]:
    """Write <figure>.csv, .md and .png into out_dir; returns a summary for the caller. `beside`: runs
    of another mode shown in their own columns; `high_rate`: the CSV of scripts/toy_high_rate_study.sh
    for the toy pages' 40-bit evidence (default: toy_high_rate.csv in out_dir, if there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if panel.kind is PanelKind.COMPLEXITY:
        return write_complexity(panel, out_dir)
    stem = out_dir / panel.figure
    png = stem.with_suffix(".png")
    data = collect(panel, runset, beside)
    columns, rows = table(data)
    plot(data, panel, png)
    if high_rate is None and (out_dir / HIGH_RATE_CSV).is_file():
        high_rate = out_dir / HIGH_RATE_CSV
    write_text_atomic(stem.with_suffix(".csv"), to_csv(columns, rows))
    full_protocol = out_dir / FULL_PROTOCOL_CSV
    write_text_atomic(stem.with_suffix(".md"), markdown(data, columns, rows, png.name, high_rate,
                                                        full_protocol if full_protocol.is_file() else None))
    return {"figure": panel.figure, "runs": len(data.runs), "failed": len(data.failed),
            "incomplete": len(data.incomplete), "missing": data.missing}
