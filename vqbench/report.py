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
import json
import sys
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .results import format_value


def load_runs_or_report(paths: list[Path], prog: str, experiment: str | None = None) -> list[dict[str, Any]] | None:
    """`load_runs` (only runs of `experiment` if given), or None after a one-line error on stderr."""
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


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    files: list[Path] = []
    for p in paths:
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(p.rglob("metrics.json")))
        else:
            raise FileNotFoundError(f"no such run directory or metrics file: {p}")
    runs = []
    for f in files:
        try:
            record = json.loads(f.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{f}: not valid JSON ({err})") from err
        flat = {**record.get("config", {}), **{k: record[k] for k in ("metrics", "timings", "environment") if k in record}}
        flat["path"] = str(f.parent)
        runs.append(flat)
    return runs


def lookup(record: dict[str, Any], dotted: str) -> Any:
    """Value at a dotted path; keys may themselves contain dots (``metrics.baseline.pq.recall@10``)."""
    node: Any = record
    parts = dotted.split(".")
    while parts:
        if not isinstance(node, dict):
            return None
        for cut in range(len(parts), 0, -1):  # longest key first
            key = ".".join(parts[:cut])
            if key in node:
                node, parts = node[key], parts[cut:]
                break
        else:
            return None
    return node


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


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def _show(value: Any) -> str:
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
                for path, v in _flatten(r.get(section), f"{section}.").items():
                    values.setdefault(path, set()).add(json.dumps(v))
        parts = [f"`{p}`={'|'.join(_show(json.loads(v)) for v in sorted(vs))}" for p, vs in values.items()]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vqbench-report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run/sweep directories or metrics.json files")
    ap.add_argument("--columns", nargs="+", required=True)
    ap.add_argument("--headers", nargs="+", help="column titles (default: the column paths)")
    ap.add_argument("--sort", nargs="*", default=[])
    ap.add_argument("--out", type=Path, help="write OUT.md and OUT.csv (default: print Markdown)")
    ap.add_argument("--title", default="vqbench results")
    ap.add_argument("--note", action="append", default=[], help="paragraph(s) above the table")
    ap.add_argument("--settings", nargs="+", default=[],
                    help="config sections (e.g. dataset optimizer) whose values the runs used go into the note")
    ap.add_argument("--settings-by", help="one settings line per value of this path (e.g. optimizer.name)")
    ap.add_argument("--pivot-rows", nargs="+", help="also print compact tables: one row per these columns ...")
    ap.add_argument("--pivot-column", help="... one column per value of this path ...")
    ap.add_argument("--pivot-values", nargs="+", default=[], help="... one table per value path")
    args = ap.parse_args(argv)
    if args.headers and len(args.headers) != len(args.columns):
        ap.error(f"--headers has {len(args.headers)} entries but --columns has {len(args.columns)}")
    runs = load_runs_or_report(args.runs, "vqbench-report")
    if runs is None:
        return 2
    rows = build_table(runs, args.columns, args.sort)
    notes = list(args.note)
    if args.settings:
        notes.append(settings_note(runs, args.settings, args.settings_by))
    pivots = ""
    if args.pivot_rows and args.pivot_column:
        for value in args.pivot_values:
            header, prow = pivot(runs, args.pivot_rows, args.pivot_column, value)
            pivots += f"## {value.split('.')[-1]} by {args.pivot_column.split('.')[-1]}\n\n" + to_markdown(header, prow) + "\n\n"
        pivots += "## All runs\n\n"
    if args.out is None:
        print(f"# {args.title}\n\n" + "".join(f"{n}\n\n" for n in notes) + pivots + to_markdown(args.columns, rows, args.headers))
    else:
        write_table(args.out, args.title, notes, args.columns, rows, args.headers, before_table=pivots)
        print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
