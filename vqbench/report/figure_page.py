"""One published figure regenerated: our runs aggregated over seeds beside the published numbers.

    write_figure(panel, runset, out_dir)  ->  out_dir/<figure>.csv, .md, .png

Each point (method, x) is the mean over seeds with a quantile band (`BAND`, 5 %..95 % by
default); the paper's mean and band stand beside it with the difference. Every published
point appears, with n = 0 where we have no run (listed as missing); failed and incomplete
runs that belong to the figure are listed too. The Markdown's sentences come from the
runs' own configs (settings, seeds, command, wall time), never from text typed here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ..common.atomic import write_text_atomic
from ..metrics.rate_distortion import gap_db
from ..paper.reference import copied_bands
from ..paper.reference import figure as reference_figure
from ..run.runs import RunSet, lookup
from .figure_data import BAND, FigureData, FigureError, Row
from .figure_evidence import full_protocol_link, high_rate_lines, unit_factor_lines
from .figure_plot import plot
from .figure_text import code_versions, comparability, dataset_label, orderings, settings_lines, sweep_commands
from .panels import USAGE_FLAG, Panel, complexity_points
from .tables import to_csv, to_markdown


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


# --------------------------------------------------------------------------- tables
def _toy_columns(row: Row, figure: str) -> dict[str, float]:
    """Scale-free forms: MSE relative to the data variance, and the gap to the R-D bound
    (the paper's gap measured against the bound of our data model at the same bits)."""
    from ..paper.conventions import from_paper_units

    out = {"ours_mse_rel": row.extra("mse_rel"), "ours_rd_gap_db": row.extra("rd_gap_db"),
           "paper_mse_rel": math.nan, "paper_rd_gap_db": math.nan}
    if row.paper is not None:
        out["paper_mse_rel"] = from_paper_units(row.paper[0], figure)
        bound, variance = row.extra("rd_bound_mse"), row.extra("data_variance")
        if not math.isnan(bound):
            out["paper_rd_gap_db"] = gap_db(out["paper_mse_rel"] * variance, bound)
    return out


def table(data: FigureData) -> tuple[list[str], list[list[Any]]]:
    ref = reference_figure(data.panel.figure)
    columns = ["method", ref.x_name, "n", "seeds", "ours_mean", "ours_low", "ours_high",
               "paper_mean", "paper_low", "paper_high", "ours_minus_paper"]
    toy = getattr(data.panel.points, "toy", False)
    toy_columns = ["ours_mse_rel", "paper_mse_rel", "ours_rd_gap_db", "paper_rd_gap_db"] if toy else []
    columns += toy_columns
    extra_columns = dict(data.panel.extra_columns)
    columns += list(extra_columns.values())
    mode = data.beside_mode
    beside_columns = ([f"{mode}_n", f"{mode}_seeds", f"{mode}_mean", f"{mode}_low", f"{mode}_high"]
                      + ([f"{mode}_rd_gap_db"] if toy else [])) if data.beside_runs else []
    columns += beside_columns + ["flags"]
    out = []
    for row in data.rows:
        mean, lo, hi = row.stat()
        p_mean, p_lo, p_hi = row.paper if row.paper else (None, None, None)
        diff = mean - p_mean if (row.paper and row.n) else None
        cells = [row.method, int(row.x), row.n, " ".join(map(str, sorted(row.seeds))),
                 mean if row.n else None, lo if row.n else None, hi if row.n else None,
                 p_mean, p_lo, p_hi, diff]
        if toy:
            extra = _toy_columns(row, data.panel.figure)
            cells += [None if math.isnan(extra[c]) else extra[c] for c in toy_columns]
        cells += [None if math.isnan(row.extra(k)) else row.extra(k) for k in extra_columns]
        if beside_columns:
            b = data.beside.get((row.method, row.x))
            if b is not None and b.n:
                cells += [b.n, " ".join(map(str, sorted(b.seeds))), *b.stat()] + ([b.extra("rd_gap_db")] if toy else [])
            else:
                cells += [0, ""] + [None] * (len(beside_columns) - 2)
        flags = _merged_flags(row.flags | (data.beside[row.method, row.x].flags
                                           if (row.method, row.x) in data.beside else set()))
        if row.paper and not row.n:
            flags.append("missing: no finished run")
        cells.append("; ".join(flags))
        out.append(cells)
    return columns, out


def _merged_flags(flags: set[str]) -> list[str]:
    """One usage flag per point ("codewords used 71-74%") however many seeds raised it."""
    usage = sorted(int(f.split()[-1].rstrip("%")) for f in flags if f.startswith("codewords used"))
    out = sorted(f for f in flags if not f.startswith("codewords used"))
    if usage:
        span = f"{usage[0]}%" if usage[0] == usage[-1] else f"{usage[0]}-{usage[-1]}%"
        out.append(f"codewords used {span} (< {USAGE_FLAG:.0%} in a seed: not converged)")
    return out


def complexity_table(panel: Panel) -> tuple[list[str], list[list[Any]]]:
    ref = reference_figure(panel.figure)
    published = {(k, float(x)): s.mean[i] for k, s in ref.series.items() for i, x in enumerate(ref.x)}
    columns = ["method", "bits", "num_codebooks", "bits_per_codebook", "dim", "beam_width", "ours_log10_wmops",
               "paper_convention_log10_wmops", "published_log10_wmops", "paper_convention_minus_published"]
    rows = []
    for name, bits, ours, conv, s in complexity_points(panel.figure):
        pub = published.get((name, bits))
        rows.append([name, int(bits), s["num_codebooks"], s["bits_per_codebook"], s["dim"], s["beam_width"],
                     ours, conv, pub, None if pub is None else conv - pub])
    return columns, rows


# --------------------------------------------------------------------------- text
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


def _copied_band_lines(ref) -> list[str]:
    return [f"The published {m.upper()} {side} band (paper_{side}) equals {src.upper()}'s value for value in the "
            f"authors' data, a copy, not {m.upper()}'s own: it is shown as unknown (blank, flagged in the table; not "
            "shaded on the plot)." for (m, side), src in sorted(copied_bands(ref).items())]


def markdown(data: FigureData, columns: list[str], rows: list[list[Any]], png_name: str | None,
             high_rate: Path | None = None, full_protocol: Path | None = None) -> str:
    panel, ref = data.panel, reference_figure(data.panel.figure)
    runs = data.runs
    lines = [f"# {ref.title}: ours beside the published numbers", ""]
    lines.append(f"Published: Vali & Bäckström, ICASSP 2023, {ref.title} — data: {ref.data}.")
    if panel.complexity:
        lines.append("Counted, not measured: weighted operations (ITU-T G.191 weights) to encode one vector, "
                     "in millions (WMOPS), at the settings in the table's columns; `ours` counts the code path "
                     "vqbench runs (its lookup-table beam search, vqbench/metrics/complexity.py), `paper_convention` the "
                     "authors' count of a direct distance search (vqbench/paper/complexity.py).")
    else:
        mode = sorted({str(lookup(r, "paper.mode")) for r in runs}) or ["none"]
        wall = sum(float(lookup(r, "timings.total") or 0.0) for r in runs)
        seeds = sorted({int(lookup(r, "seed") or 0) for r in runs})
        datasets = sorted({dataset_label(r) for r in runs})
        lines.append(f"Ours: {len(runs)} finished runs, mode {', '.join(mode)}, seeds {seeds}, "
                     f"data: {'; '.join(datasets) or 'none'}; wall time {wall:,.0f} s summed over runs.")
        lines.append(f"Bands: the {BAND[0]:.0%}–{BAND[1]:.0%} quantiles over seeds (ours); the paper's "
                     "published quantile band (paper_low/high).")
        if data.duplicates:
            lines.append(f"{data.duplicates} points were run twice with the same seed; the run that finished "
                         "last is used.")
        if data.superseded:
            lines.append(f"{data.superseded} older attempts of these jobs (the same config run again) are left "
                         "out: only each job's newest finished run counts.")
        for cmd in sweep_commands(runs):
            lines.append(f"Command: `{cmd}`")
        lines += _beside_lines(data)
        if getattr(panel.points, "toy", False):
            lines += full_protocol_link(panel.figure, full_protocol)
        lines += comparability(runs)
        lines += code_versions(runs)
        lines += _copied_band_lines(ref)
    if not panel.complexity:
        pairs = [f"{k} ↔ {v}" for k, v in panel.compare.items() if k in ref.series and k != v]
        if pairs:
            lines.append(f"Published series beside our methods: {', '.join(pairs)}.")
    if panel.note:
        lines.append(panel.note)
    lines.append("")
    if png_name:
        lines += [f"![{ref.title}]({png_name})", ""]
    lines += [to_markdown(columns, rows), ""]
    if not panel.complexity and runs:
        lines += orderings(data) + [""]
        if panel.evidence is not None:
            lines += panel.evidence(data)
    if getattr(panel.points, "toy", False) and not panel.complexity:
        lines += unit_factor_lines(data) + [""]
        lines += high_rate_lines(data, high_rate, data.beside, data.beside_mode if data.beside_runs else None)
    missing = [r for r in rows if "missing" in str(r[-1])]
    if not panel.complexity:
        lines.append(f"## Runs that did not finish ({len(data.failed)} failed, {len(data.incomplete)} incomplete, "
                     f"{len(missing)} published points without a run)")
        lines.append("")
        for f in data.failed:
            lines.append(f"- failed: `{Path(f['path']).name}` ({' '.join(f['overrides'])}): {f['error']}")
        for j in data.incomplete:
            lines.append(f"- incomplete (no metrics.json, no failed.json): `{j}`")
        if not (data.failed or data.incomplete or missing):
            lines.append("None: every published point has runs.")
        if runs:
            lines += ["", "## Settings of these runs", ""] + settings_lines(runs)
        if data.beside_runs:
            lines += ["", f"## Settings of the {data.beside_mode} runs beside them", ""]
            lines += settings_lines(data.beside_runs)
    return "\n".join(lines) + "\n"


def write_figure(panel: Panel, runset: RunSet, out_dir: Path, beside: RunSet | None = None,
                 high_rate: Path | None = None) -> dict[str, Any]:
    """Write <figure>.csv, .md and .png into out_dir; returns a summary for the caller. `beside`: runs
    of another mode shown in their own columns; `high_rate`: the CSV of scripts/toy_high_rate_study.sh
    for the toy pages' 40-bit evidence (default: toy_high_rate.csv in out_dir, if there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / panel.figure
    png = stem.with_suffix(".png")
    if panel.complexity:
        columns, rows = complexity_table(panel)
        data = FigureData(panel, [], [], [], [])
        plot(None, panel, png, rows)
    else:
        data = collect(panel, runset, beside)
        columns, rows = table(data)
        plot(data, panel, png)
    if high_rate is None and (out_dir / "toy_high_rate.csv").is_file():
        high_rate = out_dir / "toy_high_rate.csv"
    write_text_atomic(stem.with_suffix(".csv"), to_csv(columns, rows))
    full_protocol = out_dir / "toy_full_protocol.csv"
    write_text_atomic(stem.with_suffix(".md"), markdown(data, columns, rows, png.name, high_rate,
                                                        full_protocol if full_protocol.is_file() else None))
    missing = sum(1 for r in rows if "missing" in str(r[-1]))
    return {"figure": panel.figure, "runs": len(data.runs), "failed": len(data.failed),
            "incomplete": len(data.incomplete), "missing": missing}


def write_index(out_dir: Path) -> Path:
    """out_dir/README.md: every panel present in out_dir, how many published points have runs."""
    import csv

    from .panels import PANELS

    lines = ["# The paper's figures regenerated", "",
             "Generated by `vqbench-report ... --figure` from the runs named in each panel's page; "
             "published numbers: Vali & Bäckström, ICASSP 2023.", "",
             "| panel | title | published points with ≥ 1 run | points with ≥ 3 seeds | page | plot |",
             "|---|---|---|---|---|---|"]
    for name, panel in PANELS.items():
        f = out_dir / f"{name}.csv"
        if not f.is_file():
            continue
        rows = list(csv.DictReader(f.read_text().splitlines()))
        title = reference_figure(name).title
        if panel.complexity:
            have = three = f"{len(rows)} of {len(rows)} (counted)"
        else:
            published = [r for r in rows if r["paper_mean"]]
            n = [int(r["n"]) for r in published]
            have = f"{sum(v >= 1 for v in n)} of {len(n)}"
            three = f"{sum(v >= 3 for v in n)} of {len(n)}"
        lines.append(f"| {name} | {title} | {have} | {three} | [{name}.md]({name}.md) | [{name}.png]({name}.png) |")
    studies = sorted(p for p in out_dir.glob("*.md") if p.stem not in PANELS and p.name != "README.md")
    if studies:
        lines += ["", "Other pages here (fits and studies behind the figures; each says how it was made):", ""]
        for page in studies:
            first = page.read_text().splitlines()[:1]
            title = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else page.stem
            lines.append(f"- [{page.name}]({page.name}): {title}")
    path = out_dir / "README.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
