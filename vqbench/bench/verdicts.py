"""Reproduction verdicts of the estimator benchmark's peer cells.

A peer reproduces its counterpart (the same quantizer trained by our estimator of the same kind)
when the two means differ by no more than the larger of the two seed standard deviations (both
cells need >= 2 seeds); otherwise they differ, and the page lists the settings that differ (the
peer's recorded ``effective`` values against our run's config) and the mechanisms that differ
(peers.MECHANISMS).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..run.runs import lookup
from .cells import RowKey, Table, columns, row_key
from .peers import MECHANISMS, PEERS, PeerSpec
from .table_text import bits_label, fmt
from .tasks import TASKS, Metric, Task


@dataclass
class Verdict:
    peer: RowKey
    ours: RowKey
    task: Task
    rate: str
    metric: Metric
    delta: float | None
    spread: float | None
    outcome: str  # reproduces | differs | open (too few seeds)


def _spec(row: RowKey) -> PeerSpec:
    return next(s for s in PEERS if s.name == row.estimator and s.quantizer == row.quantizer)


def verdicts(table: Table) -> list[Verdict]:
    out = []
    for row in (r for r in table.rows if r.kind == "peer"):
        ours = RowKey("ours", row.quantizer, _spec(row).counterpart)
        for task, rate, metric in columns(table):
            if (row, task.name, rate) not in table.expected:
                continue
            p, o = table.cell(row, task.name, rate, metric.key), table.cell(ours, task.name, rate, metric.key)
            if p is None or o is None or p.sd is None or o.sd is None:
                out.append(Verdict(row, ours, task, rate, metric, None, None, "open"))
                continue
            delta, spread = p.mean - o.mean, max(p.sd, o.sd)
            out.append(Verdict(row, ours, task, rate, metric, delta, spread,
                               "reproduces" if abs(delta) <= spread else "differs"))
    return out


def _our_value(table: Table, row: RowKey, task: str, key: str) -> Any:
    for run in table.runs[task]:
        if row_key(run) == row:
            return lookup(run, key)
    return None


def setting_differences(table: Table, peer: RowKey, ours: RowKey, task: str) -> list[str]:
    """The peer's recorded effective settings that differ from our counterpart run's config."""
    diffs = set()
    for run in table.peer_runs[task]:
        if row_key(run) != peer:
            continue
        for key, value in (run["peer"].get("effective") or {}).items():
            mine = _our_value(table, ours, task, key)
            if key == "optimizer.init" and value == "ours (copied)":
                continue
            if key == "optimizer.noise_std" and mine is not None and not isinstance(value, str) \
                    and math.isclose(float(value), float(mine), rel_tol=1e-6):
                continue
            if mine != value:
                diffs.add(f"`{key}`: theirs {value}, ours {mine if mine is not None else '(none)'}")
    return sorted(diffs)


def verdict_lines(table: Table) -> list[str]:
    """The verdict table of the decided cells, then per peer why it differs where it does."""
    found = verdicts(table)
    shown = [v for v in found if v.outcome != "open"]
    if not shown:
        return [f"No verdict yet: {len(found)} peer cells lack 2 seeds on a side (peer runs need the extra: "
                "`pip install -e '.[peers]'`, then `python scripts/bench_estimators.py run`)."]
    lines = ["| peer | ours | task | rate | metric | Δ mean (peer − ours) | spread (max sd) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for v in shown:
        digits = v.metric.digits + 1
        lines.append(f"| {v.peer.label} | {v.ours.label} | {v.task.name} | {bits_label(v.task, v.rate)} | "
                     f"{v.metric.label} | {fmt(v.delta, digits)} | {fmt(v.spread, digits)} | {v.outcome} |")
    lines += ["", f"{len(found) - len(shown)} more peer cells are open (fewer than 2 seeds on a side).", "",
              "Why they differ where they do (settings read from the runs; mechanisms from the peers' code):", ""]
    for peer in dict.fromkeys(v.peer for v in shown):
        lines.append(_why_line(table, peer, shown))
    return lines


def _why_line(table: Table, peer: RowKey, shown: list[Verdict]) -> str:
    """One peer's outcomes per task, the settings that differ from ours and the mechanisms that do."""
    ours = next(v.ours for v in shown if v.peer == peer)
    spec = _spec(peer)
    tally = defaultdict(int)
    for v in shown:
        if v.peer == peer:
            tally[f"{v.task.name} {v.outcome}"] += 1
    diffs = sorted({d for task in TASKS for d in setting_differences(table, peer, ours, task)})
    return (f"- **{peer.label}** vs {ours.label} ({spec.label}; "
            + ", ".join(f"{k}: {n}" for k, n in sorted(tally.items())) + "): "
            + ("settings that differ: " + "; ".join(diffs) + ". " if diffs else "every setting with a "
               "counterpart is ours. ")
            + MECHANISMS[(spec.peer, spec.variant)])


def diveq_verdict(table: Table) -> list[str]:
    """The headline: our DiVeQ against the authors' package at matched noise."""
    found = [v for v in verdicts(table) if v.peer.estimator == "diveq" and v.peer.setting == "matched"]
    if not found:
        return ["DiVeQ vs the authors' package at matched noise: no runs yet."]
    tally = defaultdict(int)
    for v in found:
        tally[v.outcome] += 1
    return [f"DiVeQ vs the authors' package (`diveq`) at matched noise: {tally['reproduces']} of {len(found)} cells "
            f"within the seed spread, {tally['differs']} outside, {tally['open']} open (fewer than 2 seeds on a side)."]
