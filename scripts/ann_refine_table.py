"""The page of scripts/ann_refine.sh: AVQ-NSVQ with and without optimizer.refine against faiss LSQ,
one row per seed and method, from the runs' metrics.json (nothing typed).

    python scripts/ann_refine_table.py runs/ann_refine --out results/ann_refine

writes results/ann_refine.md and .csv atomically. The goal (issue 25): AVQ-NSVQ + refine has a
lower base MSE than LSQ at every seed, within 30 CPU-minutes of training (runs at threads=1, so
the training's wall seconds are its CPU seconds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vqbench.report.tables import load_runs_or_report, write_table

COLUMNS = ["seed", "method", "refine", "mse", "recall@1", "recall@10", "recall@100", "train_s", "threads", "run"]
GOAL_TRAIN_S = 30 * 60


def rows_of(record: dict) -> list[dict]:
    m, t, o, q = record["metrics"], record["timings"], record["optimizer"], record["quantizer"]
    base = {"seed": int(record["seed"]), "run": record["path"], "threads": record.get("threads")}
    rows = []
    if "bits" in m:
        refine = int(o.get("refine", 0))
        kept = m.get("train.refine_rounds_kept")
        rows.append({**base, "method": f"{q['name'].upper()} W={int(m.get('beam_width', 1))} {o['name'].upper()}"
                     + (f" + refine {refine}" if refine else ""),
                     "refine": f"{int(kept)} of {refine} kept" if refine and kept is not None else "off",
                     "mse": m.get("mse"), "train_s": t.get("train"),
                     **{k: m.get(k) for k in ("recall@1", "recall@10", "recall@100")}})
    if "baseline.lsq.bits" in m:
        p = "baseline.lsq."
        rows.append({**base, "method": "faiss LSQ", "refine": "", "mse": m.get(p + "mse"),
                     "train_s": t.get(p + "train"), **{k: m.get(p + k) for k in ("recall@1", "recall@10", "recall@100")}})
    return rows


def verdicts(rows: list[dict]) -> list[str]:
    """One line per seed: refined AVQ's MSE against LSQ's and its training time against the goal."""
    lines = []
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed and "refine" in r["method"] and r["mse"] is not None]
        lsq = [r for r in rows if r["seed"] == seed and r["method"] == "faiss LSQ"]
        plain = [r for r in rows if r["seed"] == seed and r["refine"] == "off"]
        if not mine or not lsq:
            lines.append(f"- seed {seed}: incomplete (refined AVQ {'present' if mine else 'missing'}, "
                         f"LSQ {'present' if lsq else 'missing'})")
            continue
        a, b = mine[0], lsq[0]
        lower = a["mse"] < b["mse"]
        fast = a["train_s"] is not None and a["train_s"] <= GOAL_TRAIN_S
        gain = f"; without refine {plain[0]['mse']:,.1f}" if plain else ""
        lines.append(f"- seed {seed}: MSE {a['mse']:,.1f} vs LSQ {b['mse']:,.1f} "
                     f"({'lower' if lower else '**not lower**'}, {a['mse'] / b['mse'] - 1:+.2%}){gain}; "
                     f"training {a['train_s'] / 60:.1f} min ({'within' if fast else '**over**'} 30 min)")
    lsq_mse = {r["mse"] for r in rows if r["method"] == "faiss LSQ" and r["mse"] is not None}
    lsq_seeds = {r["seed"] for r in rows if r["method"] == "faiss LSQ"}
    if len(lsq_seeds) > 1 and len(lsq_mse) == 1:
        lines.append(f"- LSQ's MSE is the same at all {len(lsq_seeds)} seeds: faiss seeds its LSQ with its own fixed "
                     "`random_seed`, not the run's seed, so its column is one training repeated, not a spread.")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.csv")
    args = ap.parse_args(argv)
    runs = load_runs_or_report(args.runs, "ann_refine_table", experiment="ann")
    if runs is None:
        return 2
    rows = sorted((r for rec in runs for r in rows_of(rec)),
                  key=lambda r: (r["seed"], r["method"] == "faiss LSQ", "refine" in r["method"]))
    sizes = sorted({f"{rec['dataset'].get('max_base') or 'all'} base / {rec['dataset'].get('max_train') or 'all'} learn"
                    for rec in runs})
    notes = ["`bash scripts/ann_refine.sh` (runs under " + ", ".join(f"`{p}`" for p in args.runs) + "); "
             "this page by `python scripts/ann_refine_table.py`.",
             "Base MSE (per vector, summed over the 128 dims) and recall of exact asymmetric search; `train_s`: "
             "training seconds at one thread (the CPU time); LSQ is faiss.LocalSearchQuantizer with its defaults, "
             "trained in the refined run on the same learn vectors. Data: " + ", ".join(sizes) + ".",
             "Goal (issue 25): the refined AVQ's MSE below LSQ's at every seed within 30 CPU-min of training.",
             "\n".join(verdicts(rows))]
    write_table(args.out, "AVQ + NSVQ with least-squares refinement vs faiss LSQ (siftlike1m, 64 bits)", notes,
                COLUMNS, [[r.get(c) for c in COLUMNS] for r in rows])
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
