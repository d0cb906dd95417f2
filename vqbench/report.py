"""Aggregate runs (metrics.json files, e.g. a multirun sweep) into a Markdown + CSV table.

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
import sys
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .results import format_value
from .runs import RunSet, lookup, scan_runs


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


def to_csv(columns: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vqbench-report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run/sweep directories or metrics.json files")
    ap.add_argument("--columns", nargs="+", required=True)
    ap.add_argument("--headers", nargs="+", help="column titles (default: the column paths)")
    ap.add_argument("--sort", nargs="*", default=[])
    ap.add_argument("--out", type=Path, help="write OUT.md and OUT.csv (default: print Markdown)")
    ap.add_argument("--title", default="vqbench results")
    ap.add_argument("--note", action="append", default=[], help="paragraph(s) above the table")
    ap.add_argument("--pivot-rows", nargs="+", help="also print compact tables: one row per these columns ...")
    ap.add_argument("--pivot-column", help="... one column per value of this path ...")
    ap.add_argument("--pivot-values", nargs="+", default=[], help="... one table per value path")
    args = ap.parse_args(argv)
    if args.headers and len(args.headers) != len(args.columns):
        ap.error(f"--headers has {len(args.headers)} entries but --columns has {len(args.columns)}")
    try:
        runs = load_runs(args.runs)
    except (FileNotFoundError, ValueError) as err:
        print(f"vqbench-report: error: {err}", file=sys.stderr)
        return 2
    if not runs:
        print(f"vqbench-report: error: no metrics.json under {', '.join(map(str, args.runs))}", file=sys.stderr)
        return 2
    rows = build_table(runs, args.columns, args.sort)
    md = f"# {args.title}\n\n" + "".join(f"{n}\n\n" for n in args.note)
    if args.pivot_rows and args.pivot_column:
        for value in args.pivot_values:
            header, prow = pivot(runs, args.pivot_rows, args.pivot_column, value)
            md += f"## {value.split('.')[-1]} by {args.pivot_column.split('.')[-1]}\n\n" + to_markdown(header, prow) + "\n\n"
        md += "## All runs\n\n"
    md += to_markdown(args.columns, rows, args.headers) + "\n"
    if args.out is None:
        print(md)
    else:
        write_text_atomic(args.out.with_suffix(".md"), md)
        write_text_atomic(args.out.with_suffix(".csv"), to_csv(args.columns, rows))
        print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
