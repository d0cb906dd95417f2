"""The estimator benchmark's main table as Markdown: a cell is ``mean ± sd (n)``; one the
presets expect but no run fills is ``missing (0/n)``; one the task does not have (FSQ in ANN
search, peers outside toy and VQ-VAE) is ``n/a``."""

from __future__ import annotations

import statistics

from .cells import Cell, RowKey, Table, columns
from .tasks import TASKS, Metric, Task, bits_per_vector, rates


def fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def bits_label(task: Task, rate: str) -> str:
    """The rate as bits per vector (the preset's M x bits per codebook)."""
    return f"{bits_per_vector(task.name, rate)} b"


def cell_text(cell: Cell | None, metric: Metric, want: int | None) -> str:
    """``mean ± sd (n)``; ``missing (0/3)``; ``n/a`` where the task has no such cell."""
    if want is None:
        return "n/a"
    if cell is None or cell.n == 0:
        return f"missing (0/{want})"
    spread = f" ± {fmt(cell.sd, metric.digits)}" if cell.sd is not None else ""
    return f"{fmt(cell.mean, metric.digits)}{spread} ({cell.n}{'' if cell.n >= want else f'/{want}'})"


def time_text(table: Table, row: RowKey, task: Task) -> str:
    """The task's time per training step of the row (mean over its runs at every rate); k-means
    (no steps): its training seconds per run."""
    ms, secs = [], []
    for rate in rates(task.name):
        cell = table.cell(row, task.name, rate, task.metrics[0].key)
        if cell is not None:
            ms += cell.ms_per_step.values()
            secs += cell.train_s.values()
    if ms:
        return f"{statistics.fmean(ms):.1f} ms"
    if secs:
        return f"{statistics.fmean(secs):.0f} s/run"
    return ""


def main_table(table: Table) -> list[str]:
    """The page's table: a row per quantizer x estimator and peer, the columns, then time per step."""
    cols = columns(table)
    head = ["quantizer · estimator"]
    for task, rate, metric in cols:
        head.append(f"{task.name} {metric.label} {bits_label(task, rate)}".strip())
    head += [f"{task.name} time/step" for task in TASKS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        cells = [row.label]
        for task, rate, metric in cols:
            want = table.expected.get((row, task.name, rate))
            cells.append(cell_text(table.cell(row, task.name, rate, metric.key), metric, want))
        for task in TASKS.values():
            has = any((row, task.name, rate) in table.expected for rate in rates(task.name))
            cells.append(time_text(table, row, task) if has else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
