"""Fig. 4's AVQ with the textbook beam search beside AVQ with the published code's search
(quantizer.search=authors, vqbench/quantizers/avq_authors.py), paired by bitrate and seed, from the
runs' own records (metrics.json), never typed.

    python scripts/fig4_avq_search.py results/campaigns/fig4-full --out results/paper/fig4_avq_search

Every AVQ record of a Fig. 4 campaign under the given directories enters; a record that predates
the setting searched the textbook way. Columns per bitrate: seeds with a run of each search, the
mean PSNR of the pooled genuine-test MSE of each, their mean paired difference (seeds that have
both), the paper's value and each mean's distance to it, both SSIM conventions, and the training
seconds per epoch. Writes <out>.md and <out>.csv.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from vqbench.common.atomic import write_text_atomic
from vqbench.common.provenance import describe
from vqbench.paper.reference import figure
from vqbench.report.panels import pooled_psnr
from vqbench.report.tables import to_csv, to_markdown

SEARCHES = ("beam", "authors")
TOLERANCE_DB = 1.0  # issue 21's bar for a Fig. 4b point


def read_records(dirs: list[Path]) -> list[dict[str, Any]]:
    out = []
    for d in dirs:
        if not d.exists():
            raise SystemExit(f"fig4_avq_search: error: {d} does not exist")
        for f in sorted(d.rglob("metrics.json")):
            try:
                record = json.loads(f.read_text())
            except (OSError, ValueError) as err:
                raise SystemExit(f"fig4_avq_search: error: {f}: {err}") from None
            cfg = record.get("config", {})
            if (cfg.get("paper", {}).get("figure") == "fig4" and cfg.get("quantizer", {}).get("name") == "avq"
                    and "metrics" in record):
                record["path"] = str(f.parent)
                out.append(record)
    return out


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _paper(panel: str, bits: int) -> float | None:
    ref = figure(panel)
    return ref.series["avq"].mean[list(ref.x).index(bits)] if bits in ref.x else None


def table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    by: dict[tuple[int, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in records:
        search = r["config"]["quantizer"].get("search", "beam")
        by[int(r["metrics"]["bits"]), search][int(r["config"]["seed"])] = r  # one record per seed (ledger)
    columns = ["bits", "seeds_beam", "seeds_authors", "psnr_beam", "psnr_authors", "paired_difference",
               "paired_seeds", "paper_psnr", "beam_minus_paper", "authors_minus_paper", "ssim_legacy_beam",
               "ssim_legacy_authors", "paper_ssim", "ssim_standard_beam", "ssim_standard_authors",
               "train_s_per_epoch_beam", "train_s_per_epoch_authors"]
    rows = []
    for bits in sorted({b for b, _ in by}):
        runs = {s: by.get((bits, s), {}) for s in SEARCHES}
        psnr = {s: {seed: pooled_psnr(r["metrics"], genuine=True) for seed, r in runs[s].items()} for s in SEARCHES}
        mean = {s: _mean(list(psnr[s].values())) for s in SEARCHES}
        paired = sorted(set(psnr["beam"]) & set(psnr["authors"]))
        diff = _mean([psnr["authors"][k] - psnr["beam"][k] for k in paired])
        paper, paper_ssim = _paper("fig4b", bits), _paper("fig4a", bits)

        def metric(s: str, key: str) -> float | None:
            return _mean([float(r["metrics"][key]) for r in runs[s].values() if key in r["metrics"]])

        def per_epoch(s: str) -> float | None:
            return _mean([r["metrics"]["train_seconds"] / r["metrics"]["epochs"] for r in runs[s].values()
                          if r["metrics"].get("epochs")])

        rows.append([bits, len(runs["beam"]), len(runs["authors"]), mean["beam"], mean["authors"], diff, len(paired),
                     paper, None if mean["beam"] is None or paper is None else mean["beam"] - paper,
                     None if mean["authors"] is None or paper is None else mean["authors"] - paper,
                     metric("beam", "ssim_legacy_genuine"), metric("authors", "ssim_legacy_genuine"), paper_ssim,
                     metric("beam", "ssim_genuine"), metric("authors", "ssim_genuine"),
                     per_epoch("beam"), per_epoch("authors")])
    return columns, rows


def summary(columns: list[str], rows: list[list[Any]]) -> list[str]:
    col = {c: i for i, c in enumerate(columns)}
    lines = []
    for s, name in (("beam", "textbook beam search"), ("authors", "published code's search")):
        gaps = [r[col[f"{s}_minus_paper"]] for r in rows if r[col[f"{s}_minus_paper"]] is not None]
        within = sum(abs(g) <= TOLERANCE_DB for g in gaps)
        if gaps:
            lines.append(f"- AVQ with the {name}: {within} of {len(gaps)} bitrates within {TOLERANCE_DB:g} dB of the "
                         f"paper (mean minus paper from {min(gaps):+.2f} to {max(gaps):+.2f} dB).")
    diffs = [(r[0], r[col["paired_difference"]], r[col["paired_seeds"]]) for r in rows
             if r[col["paired_difference"]] is not None]
    if diffs:
        lines.append("- Published minus textbook, paired by seed: " + ", ".join(
            f"{b} bits {d:+.2f} dB ({n} seed{'s' if n != 1 else ''})" for b, d, n in diffs) + ".")
    return lines or ["- (no bitrate has runs of both searches yet)"]


def page(records: list[dict[str, Any]], sources: list[Path]) -> tuple[str, str]:
    columns, rows = table(records)
    versions = sorted({describe(r.get("code")) for r in records})
    data = sorted({Path(str(r["config"]["dataset"].get("root"))).name for r in records})
    genuine = sorted({Path(str(r["config"]["dataset"].get("genuine_test"))).name for r in records
                      if r["config"]["dataset"].get("genuine_test")})
    modes = sorted({str(r["config"]["paper"].get("mode")) for r in records})
    lines = ["# Fig. 4: AVQ's search, textbook beam search vs the published code's", "",
             f"Generated by `python scripts/fig4_avq_search.py {' '.join(str(s) for s in sources)}` from {len(records)} "
             f"AVQ records of the Fig. 4 preset (mode: {', '.join(modes)}), trained on {', '.join(data)} and scored on "
             f"the test images of {', '.join(genuine) or '(no genuine_test)'} (original pixels). PSNR: that of the "
             "pooled MSE (Fig. 4b's convention); SSIM: the legacy convention the Fig. 4a page argues for, and the "
             "standard one. `beam`: the textbook beam search (orderings of a set merged); `authors`: the published "
             "code's search (quantizer=avq_authors; proposals from the remainder x - t c_t, see "
             "vqbench/quantizers/avq_authors.py). Paper: Vali & Bäckström, ICASSP 2023, Fig. 4a/4b means.", "",
             *summary(columns, rows), "", to_markdown(columns, rows), "",
             "Code versions of the runs: " + ", ".join(versions) + ".", ""]
    return "\n".join(lines), to_csv(columns, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="directories holding the runs' metrics.json (searched below)")
    parser.add_argument("--out", type=Path, required=True, help="page path without suffix (.md and .csv are written)")
    args = parser.parse_args(argv)
    records = read_records(args.dirs)
    if not records:
        print(f"fig4_avq_search: error: no Fig. 4 AVQ record under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    md, csv = page(records, args.dirs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out.with_suffix(".md"), md)
    write_text_atomic(args.out.with_suffix(".csv"), csv)
    print(f"wrote {args.out.with_suffix('.md')} ({len(records)} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
