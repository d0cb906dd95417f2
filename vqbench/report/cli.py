"""Aggregate runs (metrics.json files, e.g. a multirun sweep) into a Markdown + CSV table,
or into the paper's figures (`--figure`): CSV + Markdown + PNG with the published numbers.

    vqbench-report multirun/paper --figure fig2a fig3            # pages into reports/paper/

    python -m vqbench.report multirun/toy/2026-11-28_10-00-00 --out results/toy \\
        --columns dataset.kind quantizer.name optimizer.name metrics.bits metrics.mse \\
        --sort dataset.kind quantizer.name metrics.bits --title "Toy data" --note "command: ..."

Columns are dotted paths into each record (config sections are at the top level:
`quantizer.name`, `metrics.mse`, `timings.total`, `environment.torch`).

An --out that cannot be written (a file in the way, a read-only or unwritable directory, a
full disk) ends with one `vqbench-report: error:` line and exit status 2; directories the
report created for it are removed again, pages already written stay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..common.errors import RunFailed
from ..run.runs import RunSet, lookup, scan_runs
from .tables import aggregate, build_table, not_finished_markdown, pivot, settings_note, to_markdown, write_table

FIGURE_OUT = Path("reports/paper")  # --figure's default --out, as scripts/reproduce_paper.sh's
DEFAULT_COLUMNS = ["experiment.name", "quantizer.name", "optimizer.name", "metrics.bits", "seed", "timings.total"]
# Each experiment's main metric(s), added to the default columns for the experiments present.
MAIN_METRICS = {"toy": ["metrics.mse"], "ann": ["metrics.recall@1", "metrics.recall@10"],
                "vqvae": ["metrics.psnr", "metrics.ssim"]}


def default_columns(runs: list[dict[str, Any]]) -> list[str]:
    """DEFAULT_COLUMNS with the main metrics of the runs' experiments before the time."""
    names = {lookup(r, "experiment.name") for r in runs}
    metrics = [m for name, ms in MAIN_METRICS.items() if name in names for m in ms]
    return DEFAULT_COLUMNS[:-1] + metrics + DEFAULT_COLUMNS[-1:]


def error(message: str) -> int:
    """Print the one error line; the exit status 2."""
    print(f"vqbench-report: error: {message}", file=sys.stderr)
    return 2


def out_problem(out: Path, directory: Path, files: list[Path]) -> str | None:
    """Why --out `out` cannot be written (files `files` in `directory`), or None: checked before
    any work, so a bad path fails at once."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link in the way
            return f"--out {out}: {existing} is a broken symbolic link"
        existing = existing.parent
    if not existing.is_dir():
        return f"--out {out}: {existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out}: cannot create files in {existing} (read-only file system or no permission)"
    for f in files:
        if f.is_dir():
            return f"--out {out}: {f} is a directory"
    return None


def missing_dirs(directory: Path) -> list[Path]:
    """The directories that writing into `directory` will create, outermost first."""
    created = []
    while not directory.exists() and directory != directory.parent:
        created.append(directory)
        directory = directory.parent
    return created[::-1]


def write_failed_line(out: Path, err: OSError | RunFailed, created: list[Path]) -> int:
    """One line for a write into --out that failed midway; the directories this report created
    are removed when nothing is in them (pages already written stay)."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break
    reason = getattr(err, "strerror", None) or " ".join(str(err).split()) or "write failed"
    try:
        free = shutil.disk_usage(next(p for p in [out, *out.parents] if p.exists())).free
        space = f"; {free / 2**20:.1f} MiB free on its file system"
    except (OSError, StopIteration):
        space = ""
    return error(f"cannot write --out {out} ({type(err).__name__}: {reason}){space}")


def figure_main(args: argparse.Namespace, runset: RunSet) -> int:
    from .figure_data import FigureError
    from .figure_index import write_index
    from .figure_page import write_figure
    from .panels import panels

    try:
        chosen = panels(args.figure)
    except ValueError as err:
        return error(str(err))
    out_dir = args.out or FIGURE_OUT
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
    created = missing_dirs(out_dir)
    try:
        for panel in chosen:
            try:
                s = write_figure(panel, runset, out_dir, beside, args.high_rate)
            except (FigureError, ValueError) as err:
                return error(str(err))
            print(f"{panel.figure}: {s['runs']} runs, {s['failed']} failed, {s['incomplete']} incomplete, "
                  f"{s['missing']} published points without a run -> {out_dir / panel.figure}.{{md,csv,png}}")
        print(f"index: {write_index(out_dir)}")
    except (OSError, RunFailed) as err:
        return write_failed_line(out_dir, err, created)
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line of vqbench-report (its description: this module's first paragraph)."""
    ap = argparse.ArgumentParser(prog="vqbench-report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run/sweep directories or metrics.json files")
    ap.add_argument("--figure", nargs="+", help="paper figures to regenerate: fig2a fig2b fig3 fig4 fig5 fig6 "
                    "(presets) or single panels (fig3_128, fig4c, ...) or all; --out is then a directory "
                    f"(default {FIGURE_OUT}, as scripts/reproduce_paper.sh; --out results/paper replaces the "
                    "committed pages)")
    ap.add_argument("--beside", nargs="+", type=Path, metavar="RUNS",
                    help="with --figure: runs of one other mode (e.g. full-protocol points) shown beside the main "
                    "runs in their own columns and markers, never averaged with them")
    ap.add_argument("--high-rate", type=Path, metavar="CSV",
                    help="with --figure: the 40-bit study CSV for the toy pages (scripts/toy_high_rate_study.sh; "
                    "default: toy_high_rate.csv in the output directory, if there)")
    ap.add_argument("--curves", nargs="*", metavar="METRIC",
                    help="draw learning curves (curves.csv) of the runs: METRIC vs step, one line per setting, mean and "
                         "range over seeds (default metric: train_loss); written to --out (default curves.png)")
    ap.add_argument("--x", default="step", choices=["step", "epoch"], help="with --curves: the x axis")
    ap.add_argument("--columns", nargs="+", default=None,
                    help=f"dotted paths into each run (default: {' '.join(DEFAULT_COLUMNS)}, with each experiment's "
                    f"main metric before timings.total: toy mse, ann recall@1 and @10, vqvae psnr and ssim)")
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
    return ap


def curves_main(args: argparse.Namespace) -> int:
    """--curves: the learning curves' PNG."""
    from .curves import draw_curves

    out = args.out if args.out is not None else Path("curves.png")
    out = out if out.suffix == ".png" else out.with_suffix(".png")
    try:
        s = draw_curves(args.runs, args.curves or ["train_loss"], out, args.x)
    except (FileNotFoundError, ValueError) as err:
        print(f"vqbench-report: error: {err}", file=sys.stderr)
        return 2
    print(f"curves: {s['runs']} runs, {s['lines']} lines -> {out}")
    return 0


def table_problem(ap: argparse.ArgumentParser, args: argparse.Namespace, runset: RunSet) -> int | None:
    """Exit status 2 after one error line when the table cannot be made from these runs, else None;
    fills in the default --columns."""
    runs = runset.finished
    if args.columns is None:
        args.columns = default_columns(runs)
        if args.headers and len(args.headers) != len(args.columns):
            ap.error(f"--headers has {len(args.headers)} entries but the default columns are {len(args.columns)}: "
                     f"{' '.join(args.columns)}")
    if not runs and not runset.failed and not runset.incomplete and not runset.unreadable:
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
    return None


def table_main(args: argparse.Namespace, runset: RunSet) -> int:
    """The table of the runs (--columns, --mean-over, --pivot-*), printed or written to --out."""
    runs = runset.finished
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
        return 0
    created = missing_dirs(args.out.parent)
    try:
        write_table(args.out, args.title, notes, columns, rows, args.headers, before_table=pivots,
                    after_table=unfinished)
    except (OSError, RunFailed) as err:
        return write_failed_line(args.out, err, created)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')} ({len(rows)} rows, {len(runs)} runs)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.headers and args.columns and len(args.headers) != len(args.columns):
        ap.error(f"--headers has {len(args.headers)} entries but --columns has {len(args.columns)}")
    if args.curves is not None:
        return curves_main(args)
    if args.figure:
        problem = out_problem(args.out or FIGURE_OUT, args.out or FIGURE_OUT, [])
    elif args.out is not None:
        problem = out_problem(args.out, args.out.parent, [args.out.with_suffix(".md"), args.out.with_suffix(".csv")])
    else:
        problem = None
    if problem:
        return error(problem)
    try:
        runset = scan_runs(args.runs)
    except (FileNotFoundError, ValueError) as err:
        return error(str(err))
    if args.figure:
        return figure_main(args, runset)
    status = table_problem(ap, args, runset)
    return table_main(args, runset) if status is None else status


if __name__ == "__main__":
    sys.exit(main())
