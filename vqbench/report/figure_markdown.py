"""The Markdown of a figure page of runs (panels of kind MEASURED or TOY): what ours are (runs,
mode, seeds, data, commands, code versions), the plot and the table, the orderings and the
panel's evidence sections, the toy pages' unit factor and 40-bit evidence, the runs that did not
finish, and the settings of the runs. Every sentence is read from the runs or the published data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..paper.reference import copied_bands
from ..paper.reference import figure as reference_figure
from ..run.runs import lookup
from .figure_data import BAND, FigureData
from .figure_evidence import full_protocol_link, high_rate_lines, unit_factor_lines
from .figure_text import (
    code_versions,
    comparability,
    dataset_label,
    orderings,
    page_head,
    page_table,
    settings_lines,
    sweep_commands,
)
from .panels import PanelKind


def markdown(data: FigureData, columns: list[str], rows: list[list[Any]], png_name: str | None,
             high_rate: Path | None = None, full_protocol: Path | None = None) -> str:
    """The page; `high_rate`: the 40-bit study CSV and `full_protocol`: toy_full_protocol.csv (toy pages)."""
    panel, ref = data.panel, reference_figure(data.panel.figure)
    toy = panel.kind is PanelKind.TOY
    lines = page_head(ref) + _ours_lines(data)
    if toy:
        lines += full_protocol_link(panel.figure, full_protocol)
    lines += comparability(data.runs) + code_versions(data.runs) + _copied_band_lines(ref)
    pairs = [f"{k} ↔ {v}" for k, v in panel.compare.items() if k in ref.series and k != v]
    if pairs:
        lines.append(f"Published series beside our methods: {', '.join(pairs)}.")
    if panel.note:
        lines.append(panel.note)
    lines.append("")
    lines += page_table(ref, png_name, columns, rows)
    if data.runs:
        lines += orderings(data) + [""]
        if panel.evidence is not None:
            lines += panel.evidence(data)
    if toy:
        lines += unit_factor_lines(data) + [""]
        lines += high_rate_lines(data, high_rate, data.beside, data.beside_mode if data.beside_runs else None)
    lines += _not_finished_lines(data) + _settings_lines(data)
    return "\n".join(lines) + "\n"


def _ours_lines(data: FigureData) -> list[str]:
    """Our runs: how many, mode, seeds, data, wall time, the band, what was left out, the commands."""
    runs = data.runs
    mode = sorted({str(lookup(r, "paper.mode")) for r in runs}) or ["none"]
    wall = sum(float(lookup(r, "timings.total") or 0.0) for r in runs)
    seeds = sorted({int(lookup(r, "seed") or 0) for r in runs})
    datasets = sorted({dataset_label(r) for r in runs})
    lines = [f"Ours: {len(runs)} finished runs, mode {', '.join(mode)}, seeds {seeds}, "
             f"data: {'; '.join(datasets) or 'none'}; wall time {wall:,.0f} s summed over runs.",
             f"Bands: the {BAND[0]:.0%}–{BAND[1]:.0%} quantiles over seeds (ours); the paper's "
             "published quantile band (paper_low/high)."]
    if data.duplicates:
        lines.append(f"{data.duplicates} points were run twice with the same seed; the run that finished "
                     "last is used.")
    if data.superseded:
        lines.append(f"{data.superseded} older attempts of these jobs (the same config run again) are left "
                     "out: only each job's newest finished run counts.")
    lines += [f"Command: `{cmd}`" for cmd in sweep_commands(runs)]
    return lines + _beside_lines(data)


def _beside_lines(data: FigureData) -> list[str]:
    runs, mode = data.beside_runs, data.beside_mode
    if not runs:
        return []
    main = sorted({str(lookup(r, "paper.mode")) for r in data.runs}) or ["none"]
    wall = sorted(float(lookup(r, "timings.total") or 0.0) for r in runs)
    points = sorted(((r.method, int(r.x), r.n) for r in data.beside.values() if r.n), key=lambda p: (p[1], p[0]))
    seeds = sorted({int(lookup(r, "seed") or 0) for r in runs})
    lines = [f"Beside ours: {len(runs)} finished runs of mode {mode} (seeds {seeds}; "
             f"data: {'; '.join(sorted({dataset_label(r) for r in runs}))}; wall time {sum(wall):,.0f} s summed, "
             f"{wall[0]:,.0f}–{wall[-1]:,.0f} s per run) at "
             + ", ".join(f"{m} {x} bits (n {n})" for m, x, n in points)
             + f": the {mode}_* columns and the open diamonds (mean, {BAND[0]:.0%}–{BAND[1]:.0%} band as error bar); "
             f"never averaged with the {', '.join(main)} runs, which stay the main series."]
    lines += [f"Command ({mode}): `{cmd}`" for cmd in sweep_commands(runs)]
    return lines


def _copied_band_lines(ref: Any) -> list[str]:
    return [f"The published {m.upper()} {side} band (paper_{side}) equals {src.upper()}'s value for value in the "
            f"authors' data, a copy, not {m.upper()}'s own: it is shown as unknown (blank, flagged in the table; not "
            "shaded on the plot)." for (m, side), src in sorted(copied_bands(ref).items())]


def _not_finished_lines(data: FigureData) -> list[str]:
    """The failed and incomplete runs of the figure, and how many published points have no run."""
    lines = [f"## Runs that did not finish ({len(data.failed)} failed, {len(data.incomplete)} incomplete, "
             f"{data.missing} published points without a run)", ""]
    lines += [f"- failed: `{Path(f['path']).name}` ({' '.join(f['overrides'])}): {f['error']}" for f in data.failed]
    lines += [f"- incomplete (no metrics.json, no failed.json): `{j}`" for j in data.incomplete]
    if not (data.failed or data.incomplete or data.missing):
        lines.append("None: every published point has runs.")
    return lines


def _settings_lines(data: FigureData) -> list[str]:
    lines = ["", "## Settings of these runs", ""] + settings_lines(data.runs) if data.runs else []
    if data.beside_runs:
        lines += ["", f"## Settings of the {data.beside_mode} runs beside them", ""] + settings_lines(data.beside_runs)
    return lines
