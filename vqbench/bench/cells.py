"""The estimator benchmark's table: run records -> cells. Rows are quantizer x estimator (our
runs, in the presets' method order) and the peer layers (peer_runs.py); a cell is one (row,
task, rate, metric) with the values of its seeds. The cells expected are the presets' and the
peer job lists' jobs, so a page can count the missing ones."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run.runs import lookup, scan_runs
from .peer_runs import peer_jobs
from .tasks import TASKS, Metric, Task, method_parts, rates, sweep_values, task_of

ROW_ORDER = ("rvq", "pvq", "avq", "fsq")  # our rows' quantizers in page order (any other after them)


@dataclass
class Cell:
    """One (row, task, rate, metric): the values of its seeds."""

    values: dict[int, float] = field(default_factory=dict)  # seed -> value
    ms_per_step: dict[int, float] = field(default_factory=dict)
    train_s: dict[int, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values.values()) if self.values else None

    @property
    def sd(self) -> float | None:
        """Sample standard deviation over seeds (None below 2 seeds)."""
        return statistics.stdev(self.values.values()) if self.n >= 2 else None

    @staticmethod
    def mean_of(values: dict[int, float]) -> float | None:
        return statistics.fmean(values.values()) if values else None


@dataclass(frozen=True)
class RowKey:
    kind: str  # "ours" | "peer"
    quantizer: str
    estimator: str  # our optimizer, or the peer's name
    setting: str = ""  # peers: defaults | matched

    @property
    def label(self) -> str:
        if self.kind == "ours":
            return f"{self.quantizer.upper()} · {'(own rounding)' if self.quantizer == 'fsq' else self.estimator}"
        return f"{self.quantizer.upper()} · peer {self.estimator} ({self.setting})"


def row_key(run: Mapping[str, Any]) -> RowKey:
    q, o = run["quantizer"]["name"], run["optimizer"]["name"]
    peer = run.get("peer")
    if isinstance(peer, Mapping):
        return RowKey("peer", q, str(peer["name"]), str(peer["setting"]))
    return RowKey("ours", q, o)


@dataclass
class Table:
    """Every cell of the page, with the runs that fill it and the cells expected."""

    cells: dict[tuple[RowKey, str, str, str], Cell] = field(default_factory=dict)  # (row, task, rate, metric)
    expected: dict[tuple[RowKey, str, str], int] = field(default_factory=dict)  # (row, task, rate) -> seeds
    rows: list[RowKey] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))  # task -> runs
    peer_runs: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    unexpected: list[str] = field(default_factory=list)  # runs of the bench outside the presets' jobs
    failed: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def cell(self, row: RowKey, task: str, rate: str, metric: str) -> Cell | None:
        return self.cells.get((row, task, rate, metric))

    def missing(self) -> tuple[int, int, int, int]:
        """(cells with no run, cells expected, seeds missing, seeds expected), over every task's
        first metric (the metrics of one run come together)."""
        empty = total = seeds_missing = seeds_total = 0
        for (row, task, rate), want in self.expected.items():
            cell = self.cell(row, task, rate, TASKS[task].metrics[0].key)
            have = cell.n if cell else 0
            total += 1
            seeds_total += want
            empty += have == 0
            seeds_missing += max(0, want - have)
        return empty, total, seeds_missing, seeds_total


def columns(table: Table) -> list[tuple[Task, str, Metric]]:
    """The page's columns: every task's metrics at each of its rates."""
    return [(task, rate, metric) for task in TASKS.values() for rate in rates(task.name) for metric in task.metrics]


def expected_rows() -> tuple[list[RowKey], dict[tuple[RowKey, str, str], int]]:
    """The rows and (row, task, rate) -> seeds the presets and the peer job lists promise."""
    rows: list[RowKey] = []
    expected: dict[tuple[RowKey, str, str], int] = {}
    for task in TASKS.values():
        seeds = len(sweep_values(task.name, "seed")) or 1
        for method in sweep_values(task.name, "bench_method"):
            key = RowKey("ours", *method_parts(method))
            if key not in rows:
                rows.append(key)
            for rate in rates(task.name):
                expected[(key, task.name, rate)] = seeds
        for job in peer_jobs(task.name):
            key = RowKey("peer", job.spec.quantizer, job.spec.name, job.setting)
            if key not in rows:
                rows.append(key)
            expected[(key, task.name, job.bits_per_codebook)] = expected.get((key, task.name, job.bits_per_codebook), 0) + 1
    ours = sorted((r for r in rows if r.kind == "ours"),
                  key=lambda r: ROW_ORDER.index(r.quantizer) if r.quantizer in ROW_ORDER else 9)
    peers = [r for r in rows if r.kind == "peer"]
    return ours + peers, expected


def _rate(task: Task, run: Mapping[str, Any]) -> str:
    return str(run["quantizer"]["bits_per_codebook"]) if rates(task.name) != ("",) else ""


def _seconds_per_step(run: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(train seconds, milliseconds per training step; None where the run has no steps: k-means)."""
    train = lookup(run, "timings.train")
    steps = lookup(run, "metrics.train.steps")
    if steps is None:
        steps = lookup(run, "metrics.steps")
    if train is None:
        return None, None
    return float(train), (1000.0 * float(train) / float(steps) if steps else None)


def collect(paths: Iterable[Path]) -> Table:
    """Read every run below ``paths`` (one attempt per job: vqbench.run.runs)."""
    runset = scan_runs([Path(p) for p in paths])
    table = Table()
    table.rows, table.expected = expected_rows()
    table.failed = [str(f["path"]) for f in runset.failed if task_of(f) is not None]
    table.incomplete = [str(p) for p in runset.incomplete]
    table.unreadable = list(runset.unreadable)
    for run in runset.finished:
        task = task_of(run)
        if task is None:
            continue
        key, rate = row_key(run), _rate(task, run)
        if (key, task.name, rate) not in table.expected:
            table.unexpected.append(str(run["path"]))
            continue
        (table.peer_runs if key.kind == "peer" else table.runs)[task.name].append(run)
        _add_run(table, key, task, rate, run)
    return table


def _add_run(table: Table, key: RowKey, task: Task, rate: str, run: Mapping[str, Any]) -> None:
    """Put the run's metrics, seconds and ms per step into its cells."""
    seed = int(run["seed"])
    train_s, ms = _seconds_per_step(run)
    for metric in task.metrics:
        value = lookup(run, f"metrics.{metric.key}")
        if value is None:
            continue
        cell = table.cells.setdefault((key, task.name, rate, metric.key), Cell())
        cell.values[seed] = float(value)
        if train_s is not None:
            cell.train_s[seed] = train_s
        if ms is not None:
            cell.ms_per_step[seed] = ms
