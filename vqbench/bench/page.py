"""The estimator benchmark's page: run directories -> results/estimators.md (+ .csv, .png).

Rows are quantizer x estimator (our runs, in the presets' method order) and the peer layers
(peer_runs.py); columns are each task's metrics at each rate. A cell is the mean ± the sample
standard deviation over seeds, with the number of seeds; a cell the presets expect but no run
fills is shown as missing and counted, one the task does not have (FSQ in ANN search, peers
outside toy and VQ-VAE) as n/a. Every sentence about settings is read from the runs' configs.

Reproduction verdict per peer cell: the peer reproduces its counterpart (the same quantizer
trained by our estimator of the same kind) when the two means differ by no more than the larger
of the two seed standard deviations (both cells need >= 2 seeds); otherwise they differ, and the
page lists the settings that differ (the peer's recorded ``effective`` values against our run's
config) and the mechanisms that differ (peers.MECHANISMS).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report.figure_text import code_versions, dataset_label, settings_lines, sweep_commands
from ..run.runs import lookup, scan_runs
from .peer_runs import peer_jobs
from .peers import MECHANISMS, PEERS, SETTINGS, PeerSpec
from .tasks import TASKS, Metric, Task, bits_per_vector, method_parts, rates, sweep_values, task_of

PAGE = "estimators"
COMMAND = "python scripts/bench_estimators.py page"


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
    def _mean(values: dict[int, float]) -> float | None:
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
    ours = sorted((r for r in rows if r.kind == "ours"), key=lambda r: (["rvq", "pvq", "avq", "fsq"].index(r.quantizer)
                                                                         if r.quantizer in ("rvq", "pvq", "avq", "fsq") else 9))
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
    return table


# ---------------------------------------------------------------------------- text
def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def cell_text(cell: Cell | None, metric: Metric, want: int | None) -> str:
    """``mean ± sd (n)``; ``missing (0/3)``; ``n/a`` where the task has no such cell."""
    if want is None:
        return "n/a"
    if cell is None or cell.n == 0:
        return f"missing (0/{want})"
    spread = f" ± {_fmt(cell.sd, metric.digits)}" if cell.sd is not None else ""
    return f"{_fmt(cell.mean, metric.digits)}{spread} ({cell.n}{'' if cell.n >= want else f'/{want}'})"


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


def _bits_label(table: Table, task: Task, rate: str) -> str:
    """The rate as bits per vector (the preset's M x bits per codebook)."""
    return f"{bits_per_vector(task.name, rate)} b"


def columns(table: Table) -> list[tuple[Task, str, Metric]]:
    return [(task, rate, metric) for task in TASKS.values() for rate in rates(task.name) for metric in task.metrics]


def main_table(table: Table) -> list[str]:
    cols = columns(table)
    head = ["quantizer · estimator"]
    for task, rate, metric in cols:
        head.append(f"{task.name} {metric.label} {_bits_label(table, task, rate)}".strip())
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
    found = verdicts(table)
    shown = [v for v in found if v.outcome != "open"]
    if not shown:
        return [f"No verdict yet: {len(found)} peer cells lack 2 seeds on a side (peer runs need the extra: "
                "`pip install -e '.[peers]'`, then `python scripts/bench_estimators.py run`)."]
    lines = ["| peer | ours | task | rate | metric | Δ mean (peer − ours) | spread (max sd) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for v in shown:
        digits = v.metric.digits + 1
        lines.append(f"| {v.peer.label} | {v.ours.label} | {v.task.name} | {_bits_label(table, v.task, v.rate)} | "
                     f"{v.metric.label} | {_fmt(v.delta, digits)} | {_fmt(v.spread, digits)} | {v.outcome} |")
    lines += ["", f"{len(found) - len(shown)} more peer cells are open (fewer than 2 seeds on a side).", "",
              "Why they differ where they do (settings read from the runs; mechanisms from the peers' code):", ""]
    for peer in dict.fromkeys(v.peer for v in shown):
        ours = next(v.ours for v in shown if v.peer == peer)
        spec = _spec(peer)
        tally = defaultdict(int)
        for v in shown:
            if v.peer == peer:
                tally[f"{v.task.name} {v.outcome}"] += 1
        diffs = sorted({d for task in TASKS for d in setting_differences(table, peer, ours, task)})
        lines.append(f"- **{peer.label}** vs {ours.label} ({spec.label}; "
                     + ", ".join(f"{k}: {n}" for k, n in sorted(tally.items())) + "): "
                     + ("settings that differ: " + "; ".join(diffs) + ". " if diffs else "every setting with a "
                        "counterpart is ours. ")
                     + MECHANISMS[(spec.peer, spec.variant)])
    return lines


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


def task_lines(table: Table) -> list[str]:
    lines = []
    for task in TASKS.values():
        runs = table.runs[task.name]
        lines += [f"### {task.title}", ""]
        if not runs:
            lines += ["No runs yet.", ""]
            continue
        lines.append(f"Data: {'; '.join(sorted({dataset_label(r) for r in runs}))}. "
                     f"{len(runs)} runs of ours, {len(table.peer_runs[task.name])} peer runs.")
        lines += [""] + [f"    {c}" for c in sweep_commands(runs)] + [""]
        lines += settings_lines(runs) + [""]
    return lines


def markdown(table: Table, png_name: str | None) -> str:
    empty, total, seeds_missing, seeds_total = table.missing()
    all_runs = [r for runs in (*table.runs.values(), *table.peer_runs.values()) for r in runs]
    lines = [
        "# Estimator benchmark",
        "",
        f"Generated by `{COMMAND}` from the runs' records; do not edit by hand.",
        "Rows: quantizer × estimator (ours), then the peers' layers trained in the same loops. Cells: mean ± sample "
        "standard deviation over seeds (number of seeds; `k/n` when fewer than the n expected). Time: training "
        "milliseconds per step (k-means, which has no steps: training seconds per run), mean over the task's runs.",
        "",
        f"**Missing: {empty} of {total} cells have no run; {seeds_missing} of {seeds_total} seed runs are missing.**",
        "",
        *diveq_verdict(table),
        "",
        *main_table(table),
        "",
    ]
    if png_name:
        lines += [f"![estimators]({png_name})", ""]
    lines += ["## Reproduction verdicts", "",
              "A peer reproduces its counterpart when |Δ mean| ≤ the larger of the two seed standard deviations.", "",
              *verdict_lines(table), "", "## Tasks and settings", "", *task_lines(table)]
    notes = [*(f"- failed: {p}" for p in table.failed), *(f"- incomplete: {p}" for p in table.incomplete),
             *(f"- unreadable: {p}" for p in table.unreadable),
             *(f"- not a job of the presets (left out): {p}" for p in table.unexpected)]
    if notes:
        lines += ["## Runs not shown", "", *notes, ""]
    lines += code_versions(all_runs)
    return "\n".join(lines).rstrip() + "\n"


def csv_text(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["kind", "quantizer", "estimator", "setting", "task", "bits_per_codebook", "metric", "mean", "sd",
                     "n", "n_expected", "ms_per_step", "train_s"])
    for row in table.rows:
        for task, rate, metric in columns(table):
            want = table.expected.get((row, task.name, rate))
            if want is None:
                continue
            cell = table.cell(row, task.name, rate, metric.key) or Cell()
            writer.writerow([row.kind, row.quantizer, row.estimator, row.setting, task.name, rate, metric.key,
                             _fmt(cell.mean, 6), _fmt(cell.sd, 6), cell.n, want,
                             _fmt(Cell._mean(cell.ms_per_step), 3), _fmt(Cell._mean(cell.train_s), 3)])
    return buf.getvalue()


def plot(table: Table, path: Path) -> None:
    """One panel per (task, rate, metric): mean with ±sd bars per row; missing cells left empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = columns(table)
    fig, axes = plt.subplots(1, len(cols), figsize=(2.4 * len(cols) + 2.5, 0.28 * len(table.rows) + 1.5),
                             sharey=True, squeeze=False)
    ys = list(range(len(table.rows)))
    for ax, (task, rate, metric) in zip(axes[0], cols):
        for y, row in zip(ys, table.rows):
            cell = table.cell(row, task.name, rate, metric.key)
            if cell is None or cell.n == 0:
                continue
            ax.errorbar(cell.mean, y, xerr=cell.sd or 0.0, fmt="o", ms=3, color="C1" if row.kind == "peer" else "C0")
        ax.set_title(f"{task.name} {metric.label}\n{_bits_label(table, task, rate)}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys, [r.label for r in table.rows], fontsize=7)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_page(paths: Iterable[Path], out: Path, plot_png: bool = True) -> Table:
    """Write ``out`` (.md), and beside it .csv and .png; returns the table."""
    from ..common.atomic import write_text_atomic

    table = collect(paths)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    if plot_png:
        plot(table, png)
    write_text_atomic(out.with_suffix(".csv"), csv_text(table))
    write_text_atomic(out, markdown(table, png.name if plot_png else None))
    return table


__all__ = ["SETTINGS", "Cell", "RowKey", "Table", "collect", "csv_text", "markdown", "verdicts", "write_page"]
