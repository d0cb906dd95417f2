"""Tables from finished runs: rows by dotted config/metrics paths, means over seeds, pivots,
Markdown and CSV (written atomically), the settings note and the list of runs that did not finish."""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from ..common.atomic import write_texts_atomic
from ..run.results import format_value
from ..run.runs import RunSet, load_runs, lookup


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
    """OUT.md (title, notes, table) and OUT.csv, written atomically together (both or neither)."""
    md = f"# {title}\n\n" + "".join(f"{n}\n\n" for n in notes) + before_table
    md += to_markdown(columns, rows, headers) + "\n" + (f"\n{after_table.rstrip()}\n" if after_table else "")
    write_texts_atomic({out.with_suffix(".md"): md, out.with_suffix(".csv"): to_csv(columns, rows)})


def to_csv(columns: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def not_finished_markdown(runset: RunSet) -> str:
    """A section listing failed and incomplete runs (empty when every run finished)."""
    if not runset.failed and not runset.incomplete and not runset.unreadable:
        return ""
    counts = f"{len(runset.failed)} failed, {len(runset.incomplete)} incomplete"
    counts += f", {len(runset.unreadable)} unreadable" if runset.unreadable else ""
    lines = ["", f"## Runs that did not finish ({counts})", ""]
    for u in runset.unreadable:
        lines.append(f"- unreadable: {u}")
    for f in runset.failed:
        lines.append(f"- failed: `{f['path']}` ({' '.join(f['overrides'])}): {f['error']}")
    for j in runset.incomplete:
        lines.append(f"- incomplete (no metrics.json, no failed.json): `{j}`")
    return "\n".join(lines) + "\n"

