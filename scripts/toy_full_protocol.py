"""Full-protocol toy points beside the committed quick pages: results/paper/toy_full_protocol.{md,csv}.

    python scripts/toy_full_protocol.py RUNS... [--pages results/paper] [--out results/paper/toy_full_protocol]

RUNS: sweep directories of `vqbench -m +paper=fig2a|fig2b` (full mode: 20,000 Adam steps of 64 fresh
vectors, the authors' protocol) at some of the points. Each full point (mean over its seeds, in the
paper's units as the report computes them, `vqbench.figure_report.collect`) stands beside the quick
mean of the committed page `PAGES/<figure>.csv` at the same point and the published value, with the
gaps to the R-D bound (scale-free) and how much of quick's distance to the published value full
training closes. The two modes are never averaged. The points this study plans (issue 15: Fig. 2a
AVQ/RVQ, Fig. 2b PVQ/AVQ at 12 and 40 bits, seeds 0-2) without a finished run are listed.
Writes both files atomically; generated text only. `vqbench-report --figure ... --beside RUNS` puts
the same points on a figure page when the quick runs are at hand too.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path

from vqbench.common.atomic import write_text_atomic
from vqbench.paper.conventions import scale_fit
from vqbench.paper.reference import figure
from vqbench.report.figure_page import collect
from vqbench.report.figure_text import settings_lines, sweep_commands
from vqbench.report.panels import PANELS
from vqbench.report.tables import to_csv, to_markdown
from vqbench.run.runs import lookup, scan_runs

PLANNED = {"fig2a": ("avq", "rvq"), "fig2b": ("pvq", "avq")}  # issue 15, item 4
PLANNED_BITS, PLANNED_SEEDS = (12, 40), (0, 1, 2)
COLUMNS = ["figure", "method", "bits", "quick_n", "quick_mean", "quick_rd_gap_db", "full_n", "full_seeds",
           "full_mean", "full_low", "full_high", "full_rd_gap_db", "paper_mean", "paper_rd_gap_db",
           "full_minus_quick_db", "quick_gap_closed", "full_wall_s_per_run"]


def fail(msg: str) -> int:
    print(f"vqbench: error: {msg}", file=sys.stderr)
    return 2


def quick_page(pages: Path, name: str) -> dict[tuple[str, int], dict[str, str]]:
    """The committed page's rows by (method, bits); the page must be of quick mode."""
    md, table = pages / f"{name}.md", pages / f"{name}.csv"
    if not (md.is_file() and table.is_file()):
        raise FileNotFoundError(f"{table} / {md}: no committed page for {name}")
    mode = re.search(r"^Ours: .* mode (\w+),", md.read_text(), re.M)
    if not mode or mode.group(1) != "quick":
        raise ValueError(f"{md}: not a quick-mode page (mode {mode.group(1) if mode else 'unknown'})")
    return {(r["method"], int(r["bits"])): r for r in csv.DictReader(table.read_text().splitlines())}


def num(v: str | None) -> float:
    return float(v) if v not in (None, "") else math.nan


def none_if_nan(v: float) -> float | None:
    return None if isinstance(v, float) and math.isnan(v) else v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--pages", type=Path, default=Path("results/paper"), help="the committed quick pages")
    p.add_argument("--out", type=Path, default=Path("results/paper/toy_full_protocol"))
    args = p.parse_args(argv)
    try:
        runset = scan_runs(args.runs)
    except (FileNotFoundError, ValueError) as err:
        return fail(str(err))
    rows, used, missing = [], [], []
    for name in PLANNED:
        panel = PANELS[name]
        runs = [r for r in runset.finished if panel.selects(r)]
        modes = sorted({str(lookup(r, "paper.mode")) for r in runs})
        if modes and modes != ["full"]:
            return fail(f"{name}: runs of mode {', '.join(modes)} given; this page is for full-mode runs")
        try:
            quick = quick_page(args.pages, name) if runs else {}
        except (FileNotFoundError, ValueError) as err:
            return fail(str(err))
        data = collect(panel, runset)
        used += data.runs
        wall: dict[tuple[str, float], list[float]] = {}
        for r in data.runs:
            for method, x, *_ in panel.points(r):
                wall.setdefault((method, float(x)), []).append(float(lookup(r, "timings.total") or 0.0))
        have = {(r.method, int(r.x)): r for r in data.rows if r.n}
        for method in PLANNED[name]:
            for bits in PLANNED_BITS:
                got = sorted(have[method, bits].seeds) if (method, bits) in have else []
                missing += [f"{name} {method} {bits} bits seed {s}" for s in PLANNED_SEEDS if s not in got]
        for (method, bits), row in sorted(have.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            q = quick.get((method, bits), {})
            mean, lo, hi = row.stat()
            qm, pm = num(q.get("ours_mean")), num(q.get("paper_mean"))
            # at the rates the unit factor was fitted on, quick ≈ published by construction: no share to close
            fitted = bits in scale_fit(name).bits
            closed = (qm - mean) / (qm - pm) if not (fitted or math.isnan(qm + pm) or qm == pm) else math.nan
            gap = row.extra("rd_gap_db")
            rows.append([name, method, bits, int(num(q.get("n")) or 0) if q else 0, none_if_nan(qm),
                         none_if_nan(num(q.get("ours_rd_gap_db"))), row.n, " ".join(map(str, sorted(row.seeds))),
                         mean, lo, hi, gap, none_if_nan(pm), none_if_nan(num(q.get("paper_rd_gap_db"))),
                         none_if_nan(10 * math.log10(mean / qm) if qm > 0 else math.nan), none_if_nan(closed),
                         sum(wall[method, float(bits)]) / len(wall[method, float(bits)])])
    if not used:
        return fail(f"no finished full-mode Fig. 2a/2b toy runs under {', '.join(map(str, args.runs))}")
    cmd = "python scripts/toy_full_protocol.py " + " ".join(str(r) for r in args.runs)
    lines = ["# Toy figures: full-protocol points beside the quick pages", "",
             f"Generated by `{cmd}` from {len(used)} finished full-mode runs and the committed quick pages "
             f"(`{args.pages}/fig2a.csv`, `fig2b.csv`). Full mode trains as the authors' scripts "
             f"(Adam lr 1e-3, 20,000 steps of 64 fresh vectors); quick mode 500 steps of 1,024. Values in the "
             f"paper's units (published = factor × relative MSE, see each page's unit-factor section); the "
             f"rd_gap_db columns (dB above the Gaussian R-D bound) do not depend on the factor. "
             f"full_minus_quick_db = 10 log10(full mean / quick mean); quick_gap_closed = (quick − full) / "
             f"(quick − paper): the share of quick's distance to the published value that full training closes (not "
             f"given at {' and '.join(map(str, scale_fit('fig2b').bits))} bits, the rates the unit factors were fitted "
             f"on, where quick and published agree by construction). "
             f"Quick and full are never averaged together.", ""]
    lines += [f"Command: `{c}`" for c in sweep_commands(used)] + [""]
    lines += [to_markdown(COLUMNS, rows), ""]
    for r in rows:
        if r[4] is not None and r[12] is not None:
            closed = "" if r[15] is None else f", {100 * r[15]:.0f} % of quick's distance to the published value closed"
            lines.append(f"- {figure(r[0]).title.split(':')[0]} {r[1].upper()} {r[2]} bits: full {r[8]:.4g} "
                         f"(n {r[6]}) vs quick {r[4]:.4g} vs published {r[12]:.4g}: full − quick {r[14]:+.3f} dB"
                         f"{closed}; gap to the R-D bound full {r[11]:.3f} dB, quick {r[5]:.3f} dB, published "
                         f"{r[13]:.3f} dB.")
    lines += ["", f"## Planned points without a finished run ({len(missing)})", ""]
    lines += [f"- {m}" for m in missing] or ["None."]
    lines += ["", "## Settings of these runs", ""] + settings_lines(used)
    write_text_atomic(args.out.with_suffix(".csv"), to_csv(COLUMNS, rows))
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {args.out}.md, .csv ({len(rows)} points, {len(missing)} planned runs missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
