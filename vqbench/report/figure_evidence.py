"""What a toy figure page can and cannot claim, written from code and data (never typed numbers):

* `unit_factor_lines`: how the figure's unit factor was fitted (`vqbench.paper.conventions.SCALE_FITS`:
  which runs, which rates), hence which agreement is built in, and the scale-free check that does not
  depend on the factor (MSE at the highest rate / MSE at the lowest, ours, published, R-D bound);
* `high_rate_lines`: the 40-bit evidence of `toy_high_rate.csv` (scripts/toy_high_rate_study.sh:
  NSVQ at several training lengths and converged k-means / Lloyd on N(0, I)) beside this page's own
  40-bit mean and the published value converted to our units, each with its gap to the R-D bound,
  and whether ours agree with Lloyd where the published value does not.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ..run.runs import lookup
from .figure_data import FigureData, Row
from .tables import to_markdown
from .toy_columns import toy_columns

HIGH_RATE_BITS = 40  # the rate of scripts/toy_high_rate_study.sh (M = 4 codebooks x 10 bits)
HIGH_RATE_KIND = "uncorrelated"  # its data, N(0, I); a CSV with a dataset.kind column says so itself
AGREE_DB = 0.1  # two gaps to the R-D bound closer than this agree (0.1 dB = 2.3 % in MSE)


def _fmt(v: float, digits: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}g}"


def unit_factor_lines(data: FigureData) -> list[str]:
    """How the page's unit factor was fitted, and the factor-free 40/12-bit check on its own rows."""
    from ..paper.conventions import scale_fit

    fit = scale_fit(data.panel.figure)
    bits = " and ".join(map(str, fit.bits))
    spread = 100.0 * (fit.high - fit.low) / 2.0 / fit.scale
    lines = [
        "## The unit factor and what it builds in", "",
        f"Published values are in the paper's units; ours are converted as published = {fit.scale:g} × (MSE / data "
        f"variance). The factor {fit.scale:g} is not ours to choose freely: `{fit.script}` fits it "
        f"({fit.evidence}) as the mean of published / our relative MSE over {fit.anchors} anchor points, "
        f"vqbench {fit.optimizer}, {' and '.join(m.upper() for m in fit.methods)} at {bits} bits "
        f"(M = {fit.num_codebooks} codebooks of {' and '.join(map(str, fit.bits_per_codebook))} bits) on "
        f"{fit.data} in {', '.join(map(str, fit.dims))} dims, {fit.num_train:,} training / {fit.num_test:,} test "
        f"vectors, seed{'s' if len(fit.seeds) > 1 else ''} {', '.join(map(str, fit.seeds))}; single anchors give "
        f"{fit.low:g}–{fit.high:g} (±{spread:.1f} %).",
        "",
        f"So agreement at {bits} bits is partly built in: the factor was chosen to make converged k-means match "
        f"the published low-rate points. The evidence is at the higher rates and in the columns that do not "
        f"depend on the factor (ours_rd_gap_db, paper_rd_gap_db, and the ratios below).",
    ]
    ratio = _ratio_rows(data.rows)
    if ratio:
        lines += ["", "Factor-free check: MSE at the highest rate run / MSE at the lowest (bits column), ours "
                  "(means over seeds), published, and the Gaussian R-D bound of our data; the factor cancels.", "",
                  to_markdown(["method", "bits", "ours", "paper", "R-D bound", "ours − bound (dB)",
                               "paper − bound (dB)"],
                              [[m, f"{b}/{a}", o, p, r, _db(o, r), _db(p, r)] for m, a, b, o, p, r in ratio])]
    return lines


def _db(a: float, b: float) -> float:
    return 10.0 * math.log10(a / b)


def _ratio_rows(rows: list[Row]) -> list[tuple[str, int, int, float, float, float]]:
    """(method, lowest bits, highest bits, ours, paper, R-D bound) for methods with both ends run."""
    by: dict[str, dict[float, Row]] = {}
    for r in rows:
        if r.paper is not None and r.n:
            by.setdefault(r.method, {})[r.x] = r
    out = []
    for method, pts in sorted(by.items()):
        if len(pts) < 2:
            continue
        a, b = pts[min(pts)], pts[max(pts)]
        ours = b.extra("mse") / a.extra("mse")
        bound = b.extra("rd_bound_mse") / a.extra("rd_bound_mse")
        out.append((method, int(a.x), int(b.x), ours, b.paper[0] / a.paper[0], bound))
    return out


def full_protocol_link(figure_name: str, path: Path | None) -> list[str]:
    """A pointer to toy_full_protocol.md (scripts/toy_full_protocol.py) when it has points of this figure."""
    if path is None or not path.is_file():
        return []
    same_runs = {"fig3_64": "fig2b"}  # panels that read another panel's runs
    name = same_runs.get(figure_name, figure_name)
    points = [r for r in csv.DictReader(path.read_text().splitlines()) if r.get("figure") == name]
    if not points:
        return []
    shown = ", ".join(f"{r['method']} {r['bits']} bits (n {r['full_n']})" for r in points)
    return [f"Full-protocol points (the authors' training length) beside this page's quick ones: {shown} in "
            f"[{path.with_suffix('.md').name}]({path.with_suffix('.md').name})."]


# --------------------------------------------------------------------------- 40-bit evidence
def read_high_rate(path: Path) -> list[dict[str, str]]:
    """The rows of toy_high_rate.csv (vqbench-report --mean-over seed); a file without the columns
    this page needs is a ValueError naming the file and the column."""
    rows = list(csv.DictReader(path.read_text().splitlines()))
    need = ("dataset.dim", "quantizer.name", "optimizer.name", "dataset.fresh_batches", "optimizer.steps", "n",
            "metrics.mse mean", "metrics.rd_gap_db mean")
    for key in need:
        if rows and key not in rows[0]:
            raise ValueError(f"{path}: no column {key!r} (expected the CSV of scripts/toy_high_rate_study.sh)")
    return rows


def _lloyd(slot: dict[str, dict[str, str]], r: dict[str, str]) -> None:
    slot["lloyd"] = r


def _nsvq(slot: dict[str, dict[str, str]], r: dict[str, str]) -> None:
    """NSVQ on fresh batches: the shortest training ('quick') and the longest ('long')."""
    if r["dataset.fresh_batches"] != "True":
        return
    steps = int(float(r["optimizer.steps"]))
    if "quick" not in slot or steps < int(float(slot["quick"]["optimizer.steps"])):
        slot["quick"] = r
    if "long" not in slot or steps > int(float(slot["long"]["optimizer.steps"])):
        slot["long"] = r


# The study's optimizers (optimizer.name) and how a row of each fills a method's slots: converged
# k-means is 'lloyd'; NSVQ gives 'quick' and 'long'. Rows of other optimizers are not shown.
STUDY_ROWS = {"kmeans": _lloyd, "nsvq": _nsvq}


def _study(rows: list[dict[str, str]], dim: int, kind: str | None) -> dict[str, dict[str, dict[str, str]]]:
    """Per method: 'quick' (NSVQ, fresh batches, fewest steps), 'long' (most steps), 'lloyd' (k-means)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for r in rows:
        if int(float(r["dataset.dim"])) != dim or r.get("dataset.kind", HIGH_RATE_KIND) != kind:
            continue
        if "quantizer.bits_per_codebook" in r and 4 * int(float(r["quantizer.bits_per_codebook"])) != HIGH_RATE_BITS:
            continue
        slot = out.setdefault(r["quantizer.name"], {})
        fill = STUDY_ROWS.get(r["optimizer.name"])
        if fill is not None:
            fill(slot, r)
    for slot in out.values():
        if "long" in slot and slot["long"] is slot.get("quick"):
            del slot["long"]
    return out


def high_rate_lines(data: FigureData, path: Path | None, beside: dict | None = None,
                    beside_mode: str | None = None) -> list[str]:
    """The page's 40-bit points beside the study's NSVQ and Lloyd rows and the published value."""
    if path is None or not path.is_file():
        return []
    kind, dim = data.panel.where.get("dataset.kind"), data.panel.where.get("dataset.dim")
    rows = read_high_rate(path)
    head = [f"## At {HIGH_RATE_BITS} bits: ours, longer training, converged Lloyd, published", ""]
    if kind is None or dim is None:
        return head + [f"`{path.name}` holds {HIGH_RATE_KIND} data only; this figure's data differ, so it has "
                       f"no longer-training or Lloyd rows for this page.", ""]
    study = _study(rows, int(dim), kind)
    if not study:
        return head + [f"`{path.name}` has no rows at {dim} dims; no longer-training or Lloyd evidence for this "
                       f"page.", ""]
    page = {r.method: r for r in data.rows if r.x == HIGH_RATE_BITS}
    mode = sorted({str(lookup(r, "paper.mode")) for r in data.runs}) or ["none"]
    columns = ["method", f"this page ({', '.join(mode)}) MSE", "dB"]
    if beside_mode:
        columns += [f"{beside_mode} MSE", "dB"]
    columns += ["NSVQ quick (steps) MSE", "dB", "NSVQ long (steps) MSE", "dB", "Lloyd MSE", "dB",
                "published → ours MSE", "dB"]
    table, verdicts = [], []
    for method in sorted(set(page) | set(study)):
        row, s = page.get(method), study.get(method, {})
        ours = (row.extra("mse"), row.extra("rd_gap_db")) if row is not None and row.n else (math.nan, math.nan)
        cells: list[Any] = [method, _fmt(ours[0], 4), _fmt(ours[1])]
        full = (math.nan, math.nan)
        if beside_mode:
            b = (beside or {}).get((method, float(HIGH_RATE_BITS)))
            full = (b.extra("mse"), b.extra("rd_gap_db")) if b is not None and b.n else full
            cells += [_fmt(full[0], 4) + (f" (n {b.n})" if b is not None and b.n else ""), _fmt(full[1])]
        got = {}
        for name in ("quick", "long", "lloyd"):
            r = s.get(name)
            got[name] = ((float(r["metrics.mse mean"]), float(r["metrics.rd_gap_db mean"])) if r
                         else (math.nan, math.nan))
            steps = f" ({int(float(r['optimizer.steps'])):,}, n {r['n']})" if r and name != "lloyd" else (
                f" (n {r['n']})" if r else "")
            cells += [_fmt(got[name][0], 4) + steps, _fmt(got[name][1])]
        pub = (math.nan, math.nan)
        if row is not None and row.paper is not None and row.n:
            extra = toy_columns(row, data.panel.figure)
            pub = (extra["paper_mse_rel"] * row.extra("data_variance"), extra["paper_rd_gap_db"])
        cells += [_fmt(pub[0], 4), _fmt(pub[1])]
        table.append(cells)
        verdicts += _verdict(method, ours[1], full[1], beside_mode, got, pub[1])
    note = (f"From `{path.name}` (scripts/toy_high_rate_study.sh; {HIGH_RATE_KIND} data, {dim} dims, means over its "
            f"seeds): NSVQ on fresh batches of 1,024 vectors at its shortest and longest training, and classical "
            f"k-means (PVQ: Lloyd per subspace, RVQ: residual k-means). MSE per vector; dB = gap to the Gaussian R-D "
            f"bound at {HIGH_RATE_BITS} bits. The published value is read through the unit factor above; its gap "
            f"is therefore as exact as that factor (±1 % in MSE is ±0.04 dB).")
    return head + [note, "", to_markdown(columns, table), ""] + verdicts + ([""] if verdicts else [])


def _verdict(method: str, ours: float, full: float, full_mode: str | None, study: dict[str, tuple[float, float]],
             published: float) -> list[str]:
    lloyd = study["lloyd"][1]
    if math.isnan(lloyd) or math.isnan(published):
        return []
    candidates = [("this page", ours), (f"{full_mode} runs", full), ("NSVQ long", study["long"][1]),
                  ("NSVQ quick", study["quick"][1])]
    near = [f"{name} {gap:.2f} dB" for name, gap in candidates if not math.isnan(gap) and abs(gap - lloyd) <= AGREE_DB]
    if near and abs(published - lloyd) > AGREE_DB:
        return [f"- **{method.upper()}**: ours agree with converged Lloyd ({lloyd:.2f} dB from the bound; "
                f"{', '.join(near)}), the published value does not: {published:.2f} dB, "
                f"{abs(lloyd - published):.2f} dB {'below' if published < lloyd else 'above'} Lloyd."]
    if near:
        return [f"- **{method.upper()}**: ours ({', '.join(near)}), Lloyd ({lloyd:.2f} dB) and the published value "
                f"({published:.2f} dB) agree within {AGREE_DB} dB."]
    return [f"- **{method.upper()}**: ours do not reach Lloyd ({lloyd:.2f} dB from the bound) within {AGREE_DB} dB; "
            f"published {published:.2f} dB."]
