"""The complexity pages (Fig. 4c, 6b; panels of kind COMPLEXITY): counts, not measurements.
Each AVQ/RVQ/PVQ point is evaluated at the quantizer settings behind the published figure
(`vqbench.paper.complexity.PUBLISHED_SETTINGS`), in vqbench's own count of the code it runs and in
the paper's convention, beside the published value. No runs are read.

    write_complexity(panel, out_dir)  ->  out_dir/<figure>.csv, .md, .png
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..common.atomic import write_text_atomic
from ..paper.reference import figure as reference_figure
from .figure_plot import COLORS, axes, finish, save
from .figure_text import page_head, page_table
from .panels import Panel, PanelKind
from .tables import to_csv

COUNTED = ("Counted, not measured: weighted operations (ITU-T G.191 weights) to encode one vector, "
           "in millions (WMOPS), at the settings in the table's columns; `ours` counts the code path "
           "vqbench runs for the row's method (AVQ: its lookup-table beam search; `avq_authors`: the published "
           "code's search on the same tables; vqbench/metrics/complexity.py), `paper_convention` the "
           "authors' count of a direct distance search (vqbench/paper/complexity.py) for the published series.")


class ComplexityRow(NamedTuple):
    """One row of a complexity page; the field names are its columns."""

    method: str  # ours: the method whose code path `ours_log10_wmops` counts
    series: str  # the published series beside it (the paper's AVQ for avq and avq_authors)
    bits: int
    num_codebooks: int
    bits_per_codebook: int
    dim: int
    beam_width: int | None
    ours_log10_wmops: float
    paper_convention_log10_wmops: float
    published_log10_wmops: float | None
    paper_convention_minus_published: float | None


def complexity_points(figure: str, compare: Mapping[str, str] | None = None
                      ) -> Iterator[tuple[str, str, float, float, float, dict[str, Any]]]:
    """(published series, our method, bits, log10 WMOPS ours, log10 WMOPS paper convention, settings)
    for AVQ/RVQ/PVQ at the settings behind the published figure
    (`vqbench.paper.complexity.PUBLISHED_SETTINGS`). ``compare`` (a panel's) names the method beside
    each series; both it and the series' own method are counted when they differ (Fig. 4: the
    published search, avq_authors, and the textbook one, avq)."""
    from ..common.options import REGISTERED
    from ..metrics.complexity import encode_wmops
    from ..paper.complexity import paper_log10_wmops, published_setting
    from ..quantizers import build_quantizer

    compare = compare or {}
    for series in ("avq", "rvq", "pvq"):
        for method in dict.fromkeys((compare.get(series, series), series)):
            node = REGISTERED["quantizer"].get(method)  # the method's own settings (avq_authors: search)
            if node is None:
                raise ValueError(f"complexity of {figure}: {method!r} (beside the published {series!r}) is not "
                                 f"a quantizer option ({', '.join(sorted(REGISTERED['quantizer']))})")
            base = dataclasses.asdict(node() if isinstance(node, type) else node)
            for bits in reference_figure(figure).x:
                s = published_setting(figure, series, bits)
                cfg = {**base, "num_codebooks": s["num_codebooks"], "bits_per_codebook": s["bits_per_codebook"],
                       "beam_width": s["beam_width"] or 1}
                ours = encode_wmops(build_quantizer(cfg, s["dim"]))
                yield series, method, float(bits), math.log10(ours), paper_log10_wmops(series, **s), s


def complexity_rows(panel: Panel) -> list[ComplexityRow]:
    """Every counted point of the panel beside the published value at the same bits (None if none)."""
    ref = reference_figure(panel.figure)
    published = {(k, float(x)): s.mean[i] for k, s in ref.series.items() for i, x in enumerate(ref.x)}
    rows = []
    for series, method, bits, ours, conv, s in complexity_points(panel.figure, panel.compare):
        pub = published.get((series, bits))
        rows.append(ComplexityRow(method, series, int(bits), s["num_codebooks"], s["bits_per_codebook"], s["dim"],
                                  s["beam_width"], ours, conv, pub, None if pub is None else conv - pub))
    return rows


def draw_complexity(panel: Panel, rows: list[ComplexityRow]):
    """The matplotlib Figure of a complexity panel (the caller closes it): per method ours, the paper's
    convention and the published counts; below, the paper's convention minus the published count."""
    fig, top, bottom = axes()
    by: dict[str, list[ComplexityRow]] = defaultdict(list)
    for row in rows:
        by[row.method].append(row)
    for name, pts in sorted(by.items()):
        c = COLORS.get(name, None)
        xs = [p.bits for p in pts]
        top.plot(xs, [p.ours_log10_wmops for p in pts], "-o", color=c, label=f"{name} ours")
        if name != pts[0].series:  # another method beside a series: its own count only
            continue
        top.plot(xs, [p.paper_convention_log10_wmops for p in pts], ":s", color=c, label=f"{name} paper convention")
        pub = [p for p in pts if p.published_log10_wmops is not None]
        top.plot([p.bits for p in pub], [p.published_log10_wmops for p in pub], "--x", color=c, label=f"{name} published")
        bottom.plot(xs, [p.paper_convention_minus_published if p.published_log10_wmops is not None else math.nan
                         for p in pts], ":s", color=c)
    bottom.set_ylabel("conv. − published")
    return finish(fig, top, bottom, panel, [], [])


def complexity_markdown(panel: Panel, rows: list[ComplexityRow], png_name: str | None) -> str:
    ref = reference_figure(panel.figure)
    lines = page_head(ref) + [COUNTED] + ([panel.note] if panel.note else []) + [""]
    lines += page_table(ref, png_name, list(ComplexityRow._fields), rows)
    return "\n".join(lines) + "\n"


def write_complexity(panel: Panel, out_dir: Path) -> dict[str, Any]:
    """Write <figure>.csv, .md and .png of a complexity panel into out_dir (which exists); returns
    the summary `write_figure` returns (no runs, nothing missing)."""
    if panel.kind is not PanelKind.COMPLEXITY:
        raise ValueError(f"panel {panel.figure} is of kind {panel.kind.value}, not a complexity panel")
    stem = out_dir / panel.figure
    rows = complexity_rows(panel)
    png = stem.with_suffix(".png")
    save(draw_complexity(panel, rows), png)
    write_text_atomic(stem.with_suffix(".csv"), to_csv(list(ComplexityRow._fields), rows))
    write_text_atomic(stem.with_suffix(".md"), complexity_markdown(panel, rows, png.name))
    return {"figure": panel.figure, "runs": 0, "failed": 0, "incomplete": 0, "missing": 0}
