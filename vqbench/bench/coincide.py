"""Estimators that coincide: our rows whose every seed gives the same value in one cell column.

On raw vectors (the toy and ANN tasks) no gradient reaches an input, and several estimators then
take the same codebook steps; the page lists where the runs show that, so a reader sees identical
cells explained rather than suspects a mix-up. The groups are found in the records, never listed
by hand.
"""

from __future__ import annotations

import math
from collections import defaultdict

from .cells import RowKey, Table
from .table_text import bits_label
from .tasks import TASKS

RELATIVE_TOLERANCE = 1e-9  # equal seeds: the same steps up to float summation order

WHY = ("Why: on raw vectors no gradient reaches an input, and the estimators differ only in the gradient they "
       "pass to one. On the codebooks, NSVQ, STE and the rotation trick all follow the gradient of ‖x − x̂‖² "
       "(NSVQ: ‖x − x̃‖ = ‖x − x̂‖ for every draw of the noise; STE and rotation: the codebook loss, whose "
       "commitment term holds no parameter), so from one seed they take the same steps. DiVeQ's loss is "
       "‖x − x̂‖² too (its output lies at distance ‖x − x̂‖ from x), reached by another float path: its rows "
       "agree where rounding does not flip an assignment and drift apart where it does. Where a gradient "
       "reaches an encoder (the VQ-VAE task) they part.")


def _same(a: dict[int, float], b: dict[int, float]) -> bool:
    return len(a) >= 2 and a.keys() == b.keys() and all(
        math.isclose(a[s], b[s], rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0) for s in a)


def coinciding_groups(table: Table) -> list[tuple[str, str, str, list[RowKey]]]:
    """(task, rate, quantizer, rows) for every group of ≥ 2 of our rows equal at every seed (≥ 2
    seeds) in a task's first metric, in page order."""
    by_column: dict[tuple[str, str, str], list[RowKey]] = defaultdict(list)
    for row, task, rate, metric in table.cells:
        if row.kind == "ours" and metric == TASKS[task].metrics[0].key:
            by_column[(task, rate, row.quantizer)].append(row)
    order = {row: i for i, row in enumerate(table.rows)}
    groups = []
    for (task, rate, quantizer), rows in by_column.items():
        metric = TASKS[task].metrics[0].key
        left = sorted(rows, key=lambda r: order.get(r, len(order)))
        while left:
            first, *rest = left
            values = table.cells[(first, task, rate, metric)].values
            same = [r for r in rest if _same(values, table.cells[(r, task, rate, metric)].values)]
            if same:
                groups.append((task, rate, quantizer, [first, *same]))
            left = [r for r in rest if r not in same]
    task_order = list(TASKS)
    return sorted(groups, key=lambda g: (task_order.index(g[0]), g[1], order.get(g[3][0], 0)))


def coincide_lines(table: Table) -> list[str]:
    groups = coinciding_groups(table)
    if not groups:
        return []
    lines = ["## Estimators that coincide", "",
             f"Rows equal at every seed (relative difference ≤ {RELATIVE_TOLERANCE:.0e}".replace("e-0", "e-") + f") in a task's "
             f"{'/'.join(sorted({TASKS[g[0]].metrics[0].label for g in groups}))} column:", ""]
    for task, rate, quantizer, rows in groups:
        seeds = len(table.cells[(rows[0], task, rate, TASKS[task].metrics[0].key)].values)
        lines.append(f"- {task} {bits_label(TASKS[task], rate)}, {quantizer.upper()}: "
                     f"{', '.join(r.estimator for r in rows)} ({seeds} seeds)")
    if any(task != "vqvae" for task, *_ in groups):
        lines += ["", WHY]
    return lines + [""]
