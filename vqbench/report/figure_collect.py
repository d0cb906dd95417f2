"""A figure's rows from runs: the points of the finished runs that the panel selects, grouped by
(method, x) with one value per seed, beside every published point (`collect`); failed,
incomplete and superseded runs of the figure are kept for the page to list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..paper.reference import copied_bands
from ..paper.reference import figure as reference_figure
from ..run.runs import RunSet, lookup
from .figure_data import FigureData, FigureError, Row
from .panels import Panel


def _incomplete_selected(panel: Panel, job: Path) -> bool:
    try:
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return panel.selects(cfg)


def _one_mode(panel: Panel, runs: list[dict[str, Any]], what: str = "runs") -> str | None:
    modes = sorted({str(lookup(r, "paper.mode")) for r in runs})
    if len(modes) > 1:
        raise FigureError(f"{panel.figure}: {what} of several modes mixed ({', '.join(modes)}); report one mode at a "
                          "time (another mode can stand beside it: --beside)")
    return modes[0] if modes else None


def _group(panel: Panel, runs: list[dict[str, Any]]) -> tuple[dict[tuple[str, float], Row], int]:
    """Points of the runs grouped by (method, x), one value per seed (a repeated seed: the newer run)."""
    rows: dict[tuple[str, float], Row] = {}
    seen: set[tuple[str, float, int]] = set()
    duplicates = 0
    # The same point and seed in two runs (configs that differ outside the point, e.g. two
    # presets): the run that finished last wins, whatever its directory is called.
    for run in sorted(runs, key=lambda r: (r.get("finished_at", 0.0), r["path"])):
        seed = int(lookup(run, "seed") or 0)
        for method, x, value, extras, flags in panel.points(run):
            key = (method, float(x))
            row = rows.setdefault(key, Row(method, float(x)))
            if (method, float(x), seed) in seen:  # the same point and seed twice: keep the newest run
                duplicates += 1
                i = row.seeds.index(seed)
                del row.values[i], row.seeds[i]
                for v in row.extras.values():
                    if len(v) > i:
                        del v[i]
            seen.add((method, float(x), seed))
            row.values.append(float(value))
            row.seeds.append(seed)
            for k, v in extras.items():
                row.extras[k].append(float(v))
            row.flags.update(flags)
    return rows, duplicates


def collect(panel: Panel, runset: RunSet, beside: RunSet | None = None) -> FigureData:
    """The figure's rows: our points grouped by (method, x) beside every published point; `beside`:
    runs of one other mode whose points stand in their own columns (e.g. full-protocol runs)."""
    ref = reference_figure(panel.figure)
    runs = [r for r in runset.finished if panel.selects(r)]
    mode = _one_mode(panel, runs)
    rows, duplicates = _group(panel, runs)
    copied = copied_bands(ref)
    for series_name, series in ref.series.items():
        ours = panel.compare.get(series_name, series_name)
        for i, x in enumerate(ref.x):
            row = rows.setdefault((ours, float(x)), Row(ours, float(x)))
            low = series.low[i] if series.low and (series_name, "low") not in copied else None
            high = series.high[i] if series.high and (series_name, "high") not in copied else None
            row.paper = (series.mean[i], low, high)
            for side in ("low", "high"):
                if (series_name, side) in copied:
                    row.flags.add(f"paper_{side} unknown: the published {series_name.upper()} {side} band equals "
                                  f"{copied[series_name, side].upper()}'s digit for digit (copied)")
    failed = [f for f in runset.failed if panel.selects(f)]
    incomplete = [j for j in runset.incomplete if _incomplete_selected(panel, j)]
    ordered = sorted(rows.values(), key=lambda r: (r.paper is None, r.method, r.x))
    kept = {r["path"] for r in runs}
    superseded = sum(1 for s in runset.superseded if s["by"] in kept)
    data = FigureData(panel, ordered, runs, failed, incomplete, duplicates, superseded)
    if beside is not None:
        data.beside_runs = [r for r in beside.finished if panel.selects(r)]
        data.beside_mode = _one_mode(panel, data.beside_runs, "--beside runs")
        if data.beside_mode is not None and data.beside_mode == mode:
            raise FigureError(f"{panel.figure}: the --beside runs are of mode {mode}, as the main runs; give runs of "
                              "one mode as the main runs, another mode --beside")
        data.beside, _ = _group(panel, data.beside_runs)
    return data
