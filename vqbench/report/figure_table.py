"""The table of a figure page (its CSV and the Markdown table): one row per (method, x), our mean
and band over seeds beside the published point, the toy pages' scale-free columns, the panel's
extra columns, the columns of runs of another mode (`--beside`), and the point's flags."""

from __future__ import annotations

import math
from typing import Any

from ..paper.reference import figure as reference_figure
from .figure_data import FigureData, Row
from .panels import USAGE_FLAG, PanelKind
from .toy_columns import TOY_COLUMNS, toy_columns

MISSING_FLAG = "missing: no finished run"  # the flag of a published point without a run (Row.missing)
OURS_COLUMNS = ("n", "seeds", "ours_mean", "ours_low", "ours_high", "paper_mean", "paper_low", "paper_high",
                "ours_minus_paper")


def _is_toy(data: FigureData) -> bool:
    return data.panel.kind is PanelKind.TOY


def table_columns(data: FigureData) -> list[str]:
    """The page's columns, left to right; the second is the figure's x (bits or T)."""
    columns = ["method", reference_figure(data.panel.figure).x_name, *OURS_COLUMNS]
    columns += list(TOY_COLUMNS) if _is_toy(data) else []
    columns += list(data.panel.extra_columns.values())
    return columns + _beside_columns(data) + ["flags"]


def _beside_columns(data: FigureData) -> list[str]:
    if not data.beside_runs:
        return []
    mode = data.beside_mode
    return ([f"{mode}_n", f"{mode}_seeds", f"{mode}_mean", f"{mode}_low", f"{mode}_high"]
            + ([f"{mode}_rd_gap_db"] if _is_toy(data) else []))


def _seeds(row: Row) -> str:
    return " ".join(map(str, sorted(row.seeds)))


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _ours_cells(row: Row) -> list[Any]:
    """`OURS_COLUMNS` of a row: blank where we have no run or the paper no point."""
    mean, lo, hi = row.stat()
    p_mean, p_lo, p_hi = row.paper if row.paper else (None, None, None)
    diff = mean - p_mean if (row.paper and row.n) else None
    return [row.n, _seeds(row), mean if row.n else None, lo if row.n else None, hi if row.n else None,
            p_mean, p_lo, p_hi, diff]


def _beside_cells(data: FigureData, row: Row, width: int) -> list[Any]:
    b = data.beside.get((row.method, row.x))
    if b is None or not b.n:
        return [0, ""] + [None] * (width - 2)
    return [b.n, _seeds(b), *b.stat()] + ([b.extra("rd_gap_db")] if _is_toy(data) else [])


def _flags(data: FigureData, row: Row) -> str:
    beside = data.beside.get((row.method, row.x))
    flags = merged_flags(row.flags | (beside.flags if beside is not None else set()))
    if row.missing:
        flags.append(MISSING_FLAG)
    return "; ".join(flags)


def table_row(data: FigureData, row: Row) -> dict[str, Any]:
    """One row of the table, by column name (`table_columns`)."""
    cells: dict[str, Any] = {"method": row.method, reference_figure(data.panel.figure).x_name: int(row.x)}
    cells.update(zip(OURS_COLUMNS, _ours_cells(row)))
    if _is_toy(data):
        toy = toy_columns(row, data.panel.figure)
        cells.update((c, _none_if_nan(toy[c])) for c in TOY_COLUMNS)
    cells.update((column, _none_if_nan(row.extra(k))) for k, column in data.panel.extra_columns.items())
    beside = _beside_columns(data)
    if beside:
        cells.update(zip(beside, _beside_cells(data, row, len(beside))))
    cells["flags"] = _flags(data, row)
    return cells


def table(data: FigureData) -> tuple[list[str], list[list[Any]]]:
    """The page's columns and its rows as cell lists in that order (for the CSV and the Markdown)."""
    columns = table_columns(data)
    return columns, [[cells[c] for c in columns] for cells in (table_row(data, row) for row in data.rows)]


def merged_flags(flags: set[str]) -> list[str]:
    """One usage flag per point ("codewords used 71-74%") however many seeds raised it."""
    usage = sorted(int(f.split()[-1].rstrip("%")) for f in flags if f.startswith("codewords used"))
    out = sorted(f for f in flags if not f.startswith("codewords used"))
    if usage:
        span = f"{usage[0]}%" if usage[0] == usage[-1] else f"{usage[0]}-{usage[-1]}%"
        out.append(f"codewords used {span} (< {USAGE_FLAG:.0%} in a seed: not converged)")
    return out
