"""Aggregate runs (metrics.json files, e.g. a multirun sweep) into a Markdown + CSV table,
or into the paper's figures (`--figure`): CSV + Markdown + PNG with the published numbers.

    vqbench-report multirun/paper --figure fig2a fig3 --out results/paper

    python -m vqbench.report multirun/toy/2026-11-28_10-00-00 --out results/toy \\
        --columns dataset.kind quantizer.name optimizer.name metrics.bits metrics.mse \\
        --sort dataset.kind quantizer.name metrics.bits --title "Toy data" --note "command: ..."

Columns are dotted paths into each record (config sections are at the top level:
`quantizer.name`, `metrics.mse`, `timings.total`, `environment.torch`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .results import format_value
from .runs import RunSet, load_runs, lookup, scan_runs


DEFAULT_COLUMNS = ["experiment.name", "quantizer.name", "optimizer.name", "metrics.bits", "seed", "timings.total"]


def load_runs_or_report(paths: list[Path], prog: str, experiment: str | None = None) -> list[dict[str, Any]] | None:
    """The finished runs (only of `experiment` if given), or None after a one-line error on stderr."""
    try:
        runs = [r for r in load_runs(paths) if experiment is None or r.get("experiment", {}).get("name") == experiment]
    except (FileNotFoundError, ValueError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return None
    if not runs:
        kind = f"{experiment} " if experiment else ""
        print(f"{prog}: error: no {kind}metrics.json under {', '.join(map(str, paths))}", file=sys.stderr)
        return None
    return runs


def _sort_key(value: Any) -> tuple:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def build_table(runs: list[dict[str, Any]], columns: list[str], sort: list[str]) -> list[list[Any]]:
    rows = [[lookup(r, c) for c in columns] for r in runs]
    order = [columns.index(s) for s in sort if s in columns]
    rows.sort(key=lambda row: tuple(_sort_key(row[i]) for i in order))
    return rows


def to_markdown(columns: list[str], rows: list[list[Any]], headers: list[str] | None = None) -> str:
    head = headers or columns
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        lines.append("| " + " | ".join("" if v is None else format_value(v) for v in row) + " |")
    return "\n".join(lines)


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None for fewer than 1 / 2 values)."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(runs: list[dict[str, Any]], keys: list[str], over: str,
              values: list[str]) -> tuple[list[str], list[list[Any]]]:
    """One row per distinct `keys` tuple: the runs' `over` values (e.g. the seeds), their number, and
    the mean and sample standard deviation of each `values` path over them."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(tuple(lookup(r, k) for k in keys), []).append(r)
    columns = list(keys) + [f"{over} values", "n"]
    for v in values:
        columns += [f"{v} mean", f"{v} sd"]
    rows = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = groups[key]
        row = list(key) + [" ".join(format_value(x) for x in sorted({lookup(r, over) for r in members}, key=_sort_key)),
                           len(members)]
        for v in values:
            row += mean_sd([float(x) for x in (lookup(r, v) for r in members) if isinstance(x, (int, float))])
        rows.append(row)
    return columns, rows


def pivot(runs: list[dict[str, Any]], rows: list[str], column: str, value: str) -> tuple[list[str], list[list[Any]]]:
    """One row per distinct `rows` tuple, one column per distinct `column` value, cells = `value`."""
    col_values = sorted({lookup(r, column) for r in runs}, key=_sort_key)
    cells: dict[tuple, dict[Any, Any]] = {}
    for r in runs:
        cells.setdefault(tuple(lookup(r, c) for c in rows), {})[lookup(r, column)] = lookup(r, value)
    keys = sorted(cells, key=lambda k: tuple(_sort_key(v) for v in k))
    header = [c.split(".")[-2] if c.endswith(".name") else c.split(".")[-1] for c in rows]
    header += [f"{column.split('.')[-1]}={format_value(v)}" for v in col_values]
    return header, [list(k) + [cells[k].get(v) for v in col_values] for k in keys]


def flatten_config(node: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a nested config as dotted paths (`{"a": {"b": 1}}` -> `{"a.b": 1}`)."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten_config(value, f"{prefix}{key}."))
    return out


def show_value(value: Any) -> str:
    """A config value for a result note: JSON-like, machine paths cut to their last part."""
    if isinstance(value, str) and Path(value).is_absolute():  # no machine paths in results
        return f".../{Path(value).name}"
    return "null" if value is None else json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


def settings_note(runs: list[dict[str, Any]], sections: list[str], group_by: str | None = None) -> str:
    """The runs' settings, read from their recorded configs: for every key of `sections`
    (e.g. ``optimizer``), the values the runs used, one line per distinct `group_by` value.
    Result notes state what the runs did from this, never from typed text."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(lookup(r, group_by) if group_by else None, []).append(r)
    lines = []
    for key in sorted(groups, key=_sort_key):
        values: dict[str, set] = {}
        for r in groups[key]:
            for section in sections:
                for path, v in flatten_config(r.get(section), f"{section}.").items():
                    values.setdefault(path, set()).add(json.dumps(v))
        parts = [f"`{p}`={'|'.join(show_value(json.loads(v)) for v in sorted(vs))}" for p, vs in values.items()]
        head = f"- {group_by}={key} ({len(groups[key])} runs): " if group_by else f"- {len(groups[key])} runs: "
        lines.append(head + ", ".join(parts))
    return ("Settings of these runs, from their recorded configs (a key an optimizer does not use in "
            "this experiment is listed too; see the README):\n\n" + "\n".join(lines))


def write_table(out: Path, title: str, notes: list[str], columns: list[str], rows: list[list[Any]],
                headers: list[str] | None = None, before_table: str = "", after_table: str = "") -> None:
    """OUT.md (title, notes, table) and OUT.csv, both written atomically."""
    md = f"# {title}\n\n" + "".join(f"{n}\n\n" for n in notes) + before_table
    md += to_markdown(columns, rows, headers) + "\n" + (f"\n{after_table.rstrip()}\n" if after_table else "")
    write_text_atomic(out.with_suffix(".md"), md)
    write_text_atomic(out.with_suffix(".csv"), to_csv(columns, rows))


def to_csv(columns: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def figure_main(args: argparse.Namespace, runset: RunSet) -> int:
    from .figure_report import FigureError, write_figure, write_index
    from .figures import panels

    try:
        chosen = panels(args.figure)
    except ValueError as err:
        print(f"vqbench-report: error: {err}", file=sys.stderr)
        return 2
    out_dir = args.out or Path("results/paper")
    beside = None
    if args.beside:
        try:
            beside = scan_runs(args.beside)
        except (FileNotFoundError, ValueError) as err:
            print(f"vqbench-report: error: --beside: {err}", file=sys.stderr)
            return 2
    if args.high_rate is not None and not args.high_rate.is_file():
        print(f"vqbench-report: error: --high-rate {args.high_rate}: no such file", file=sys.stderr)
        return 2
    for panel in chosen:
        try:
            s = write_figure(panel, runset, out_dir, beside, args.high_rate)
        except (FigureError, ValueError) as err:
            print(f"vqbench-report: error: {err}", file=sys.stderr)
            return 2
        print(f"{panel.figure}: {s['runs']} runs, {s['failed']} failed, {s['incomplete']} incomplete, "
              f"{s['missing']} published points without a run -> {out_dir / panel.figure}.{{md,csv,png}}")
    print(f"index: {write_index(out_dir)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vqbench-report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run/sweep directories or metrics.json files")
    ap.add_argument("--figure", nargs="+", help="paper figures to regenerate: fig2a fig2b fig3 fig4 fig5 fig6 "
                    "(presets) or single panels (fig3_128, fig4c, ...) or all; --out is then a directory "
                    "(default results/paper)")
    ap.add_argument("--beside", nargs="+", type=Path, metavar="RUNS",
                    help="with --figure: runs of one other mode (e.g. full-protocol points) shown beside the main "
                    "runs in their own columns and markers, never averaged with them")
    ap.add_argument("--high-rate", type=Path, metavar="CSV",
                    help="with --figure: the 40-bit study CSV for the toy pages (scripts/toy_high_rate_study.sh; "
                    "default: toy_high_rate.csv in the output directory, if there)")
    ap.add_argument("--columns", nargs="+", default=DEFAULT_COLUMNS,
                    help=f"dotted paths into each run (default: {' '.join(DEFAULT_COLUMNS)})")
    ap.add_argument("--headers", nargs="+", help="column titles (default: the column paths)")
    ap.add_argument("--sort", nargs="*", default=None, help="columns to sort by (default: all, left to right)")
    ap.add_argument("--out", type=Path, help="write OUT.md and OUT.csv (default: print Markdown)")
    ap.add_argument("--title", default="vqbench results")
    ap.add_argument("--note", action="append", default=[], help="paragraph(s) above the table")
    ap.add_argument("--settings", nargs="+", default=[],
                    help="config sections (e.g. dataset optimizer) whose values the runs used go into the note")
    ap.add_argument("--settings-by", help="one settings line per value of this path (e.g. optimizer.name)")
    ap.add_argument("--mean-over", metavar="PATH",
                    help="one row per distinct value of the other --columns: mean and sd over the runs that "
                    "differ only in PATH (e.g. seed) of each --values column")
    ap.add_argument("--values", nargs="+", default=[], help="with --mean-over: the paths to average (e.g. metrics.mse)")
    ap.add_argument("--pivot-rows", nargs="+", help="also print compact tables: one row per these columns ...")
    ap.add_argument("--pivot-column", help="... one column per value of this path ...")
    ap.add_argument("--pivot-values", nargs="+", default=[], help="... one table per value path")
    args = ap.parse_args(argv)
    if args.headers and len(args.headers) != len(args.columns):
        ap.error(f"--headers has {len(args.headers)} entries but --columns has {len(args.columns)}")
    try:
        runset = scan_runs(args.runs)
    except (FileNotFoundError, ValueError) as err:
        print(f"vqbench-report: error: {err}", file=sys.stderr)
        return 2
    if args.figure:
        return figure_main(args, runset)
    runs = runset.finished
    if not runs and not runset.failed and not runset.incomplete:
        print(f"vqbench-report: error: no metrics.json under {', '.join(map(str, args.runs))}", file=sys.stderr)
        return 2
    if args.values and not args.mean_over:
        ap.error("--values needs --mean-over (e.g. --mean-over seed)")
    if args.mean_over and (not args.values or args.headers):
        ap.error("--mean-over needs --values (the paths to average) and takes no --headers")
    unknown = [c for c in [*args.columns, *args.values, *filter(None, [args.mean_over])]
               if runs and all(lookup(r, c) is None for r in runs)]
    if unknown:
        print(f"vqbench-report: error: no run has column(s) {', '.join(unknown)} "
              f"(columns are dotted paths such as quantizer.name, metrics.mse, timings.total)", file=sys.stderr)
        return 2
    columns = args.columns
    if args.mean_over:
        keys = [c for c in args.columns if c != args.mean_over and c not in args.values]
        columns, rows = aggregate(runs, keys, args.mean_over, args.values)
    else:
        rows = build_table(runs, args.columns, args.columns if args.sort is None else args.sort)
    notes = list(args.note)
    if args.settings and runs:
        notes.append(settings_note(runs, args.settings, args.settings_by))
    pivots = ""
    if args.pivot_rows and args.pivot_column:
        for value in args.pivot_values:
            header, prow = pivot(runs, args.pivot_rows, args.pivot_column, value)
            pivots += f"## {value.split('.')[-1]} by {args.pivot_column.split('.')[-1]}\n\n" + to_markdown(header, prow) + "\n\n"
        pivots += "## All runs\n\n"
    unfinished = not_finished_markdown(runset)
    if args.out is None:
        print(f"# {args.title}\n\n" + "".join(f"{n}\n\n" for n in notes) + pivots
              + to_markdown(columns, rows, args.headers) + "\n" + unfinished)
    else:
        write_table(args.out, args.title, notes, columns, rows, args.headers, before_table=pivots,
                    after_table=unfinished)
        print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')} ({len(rows)} rows, {len(runs)} runs)")
    return 0


def not_finished_markdown(runset: RunSet) -> str:
    """A section listing failed and incomplete runs (empty when every run finished)."""
    if not runset.failed and not runset.incomplete:
        return ""
    lines = ["", f"## Runs that did not finish ({len(runset.failed)} failed, {len(runset.incomplete)} incomplete)", ""]
    for f in runset.failed:
        lines.append(f"- failed: `{f['path']}` ({' '.join(f['overrides'])}): {f['error']}")
    for j in runset.incomplete:
        lines.append(f"- incomplete (no metrics.json, no failed.json): `{j}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
