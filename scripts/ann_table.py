"""Collect ANN runs (metrics.json of `vqbench experiment=ann ...`) into one recall table.

Each run gives one row for its own quantizer and one per faiss baseline it ran
(``baseline.<name>.*`` metrics), so classical anchors sit next to our quantizers.

    python scripts/ann_table.py runs/ann_siftlike1m --out results/ann_siftlike1m \\
        --title "ANN on siftlike1m, 64 bits" --notes results/ann_siftlike1m_notes.md

writes results/ann_siftlike1m.md and .csv atomically. ``--keep results/ann_siftlike1m.csv`` also
keeps the rows of an earlier table whose runs are not among the given ones (rows made on
another checkout, whose run directories are not here).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from vqbench.report.tables import load_runs_or_report, write_table

BASELINE_LABELS = {"pq": "faiss PQ", "opq": "faiss OPQ+PQ", "rq": "faiss RQ (beam 1)",
                   "rq_beam": "faiss RQ (beam W)", "lsq": "faiss LSQ"}
COLUMNS = ["method", "optimizer", "beam", "bits", "recall@1", "recall@10", "recall@100", "recall@1000",
           "mse", "mse_per_dim", "perplexity_mean", "train_s", "encode_s", "search_s", "peak_rss_mb", "run"]
ORDER = {"pvq": 0, "rvq": 1, "avq": 2, "vq": 3}
# scripts/ann_siftlike1m.sh trains NSVQ/STE for this many steps; other lengths are named in the row
STANDARD_GRAD_STEPS = 2000
OPT_ORDER = {"nsvq": 0, "ste": 1, "kmeans": 2}


def rows_of(record: dict) -> list[dict]:
    """Rows of one run as report.load_runs reads it (config sections at the top level)."""
    m, t = record["metrics"], record["timings"]
    q, o = record["quantizer"], record["optimizer"]
    base = {"run": record["path"]}
    rows = []
    if "bits" in m:  # absent for experiment.baselines_only runs
        optimizer = o["name"]
        steps = o.get("iterations", o.get("steps"))
        if optimizer in ("nsvq", "ste") and steps is not None and int(steps) != STANDARD_GRAD_STEPS:
            optimizer += f" ({int(steps)} steps)"
        rows.append({**base, "method": q["name"].upper(), "optimizer": optimizer,
                     "beam": int(m.get("beam_width", 1)), "bits": m["bits"],
                     **{k: m.get(k) for k in COLUMNS if k in m},
                     "train_s": t.get("train"), "encode_s": t.get("encode"), "search_s": t.get("search"),
                     "peak_rss_mb": m.get("peak_rss_mb"),
                     "_key": (0, ORDER.get(q["name"], 9), OPT_ORDER.get(o["name"], 9), int(m.get("beam_width", 1)))})
    for i, name in enumerate(BASELINE_LABELS):
        p = f"baseline.{name}."
        if p + "bits" not in m:
            continue
        rows.append({**base, "method": BASELINE_LABELS[name], "optimizer": "faiss",
                     "beam": int(m.get(p + "beam_width", 1)), "bits": m[p + "bits"],
                     **{k: m.get(p + k) for k in COLUMNS if p + k in m},
                     "train_s": t.get(p + "train"), "encode_s": t.get(p + "encode"), "search_s": t.get(p + "search"),
                     "peak_rss_mb": m.get(p + "peak_rss_mb"), "_key": (1, i, 0, int(m.get(p + "beam_width", 1)))})
    return rows


def kept_rows(csv_path: Path, new_runs: set[str]) -> list[dict]:
    """Rows of an earlier table (its .csv) whose run is not in ``new_runs``, with sort keys."""
    labels = list(BASELINE_LABELS.values())
    rows = []
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["run"] in new_runs:
                continue
            row = {k: _number(v) if k not in ("method", "optimizer", "run") else v for k, v in row.items()}
            beam = int(row["beam"])
            row["beam"] = beam
            if row["method"] in labels:
                row["_key"] = (1, labels.index(row["method"]), 0, beam)
            else:
                opt = row["optimizer"].split(" ")[0]
                row["_key"] = (0, ORDER.get(row["method"].lower(), 9), OPT_ORDER.get(opt, 9), beam)
            rows.append(row)
    return rows


def _number(v: str):
    if v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (searched for metrics.json)")
    ap.add_argument("--out", type=Path, required=True, help="output path without extension")
    ap.add_argument("--title", default="ANN recall")
    ap.add_argument("--notes", type=Path, help="Markdown appended below the table (commands, remarks)")
    ap.add_argument("--keep", type=Path, help="an earlier table's .csv: keep its rows of runs not given here")
    args = ap.parse_args(argv)
    runs = load_runs_or_report(args.runs, "ann_table", experiment="ann")
    if runs is None:
        return 1
    rows = [row for r in runs for row in rows_of(r)]
    if args.keep:
        rows.extend(kept_rows(args.keep, {r["run"] for r in rows}))
    rows.sort(key=lambda r: r["_key"])
    write_table(args.out, args.title, [], COLUMNS, [[r.get(c) for c in COLUMNS] for r in rows],
                after_table=args.notes.read_text() if args.notes else "")
    print(f"wrote {args.out.with_suffix('.md')} and .csv ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
