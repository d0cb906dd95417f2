"""The Fig. 4 calibration page: every VQ-VAE protocol tried and its measured effect, generated from
the runs' own records (metrics.json), never typed.

    python scripts/fig4_calibration.py RUN_DIR [RUN_DIR ...] --out results/paper/fig4_calibration.md

Each run is one row: its method and bitrate, the settings in which it differs from what all the
listed runs share (so the base protocol is stated once and every tried change is named), PSNR and
both SSIM conventions on the genuine test images (dataset.genuine_test; PSNR of the pooled MSE, and
the mean of each image's PSNR beside it) and the pooled PSNR on the run's own
test split, the paper's value at that point and our difference, the training time per epoch (with
the machine's load when the run finished, if recorded), and the code version.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

import vqbench.training  # noqa: F401  (registers the optimizers whose defaults the page reads)
from vqbench.common.atomic import write_text_atomic
from vqbench.common.provenance import describe
from vqbench.paper.reference import figure
from vqbench.report.panels import pooled_psnr
from vqbench.report.tables import flatten_config, show_value, to_csv, to_markdown
from vqbench.run.schema import option_defaults

SECTIONS = ("experiment", "dataset", "quantizer", "optimizer", "seed")
IGNORED = ("dataset.root", "dataset.cache_dir", "dataset.genuine_test")  # where, not what


def read_runs(dirs: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for d in dirs:
        f = d / "metrics.json" if d.is_dir() else d
        try:
            record = json.loads(f.read_text())
        except (OSError, ValueError) as err:
            raise SystemExit(f"fig4_calibration: error: {f}: {err}") from None
        if record.get("config", {}).get("experiment", {}).get("name") != "vqvae":
            raise SystemExit(f"fig4_calibration: error: {f} is not a VQ-VAE run")
        record["path"] = str(f.parent)
        runs.append(record)
    return runs


def settings(record: dict[str, Any]) -> dict[str, Any]:
    """The run's settings, flat; a key its record predates is read at today's schema default."""
    cfg = record["config"]
    flat = flatten_config({k: cfg[k] for k in SECTIONS if k in cfg})
    today = flatten_config({"optimizer": option_defaults("optimizer", cfg["optimizer"]["name"])})
    for key, value in today.items():
        flat.setdefault(key, value)
    return {k: v for k, v in flat.items() if k not in IGNORED}


def split_settings(runs: list[dict[str, Any]], base: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(settings all runs share, each run's settings that differ from them and from `base`),
    method and bitrate aside."""
    flats = [settings(r) for r in runs]
    keys = set().union(*flats)
    shared = {k: flats[0].get(k) for k in keys if all(f.get(k) == flats[0].get(k) for f in flats)}
    skip = ("quantizer.name", "quantizer.bits_per_codebook")
    own = [{k: v for k, v in f.items() if k not in shared and k not in skip and base.get(k, object()) != v}
           for f in flats]
    return {**shared, **base}, own


def paper_value(metric: str, method: str, bits: float) -> float | None:
    ref = figure("fig4b" if metric == "psnr" else "fig4a")
    if method not in ref.series or bits not in ref.x:
        return None
    return ref.series[method].mean[list(ref.x).index(bits)]


def rows_of(runs: list[dict[str, Any]], own: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    columns = ["method", "bits", "setting", "psnr_genuine", "psnr_per_image_genuine", "paper_psnr", "psnr_minus_paper",
               "psnr_jpeg_test",
               "ssim_legacy_genuine", "ssim_standard_genuine", "paper_ssim", "legacy_minus_paper", "train_s_per_epoch",
               "code", "run"]
    out = []
    for record, diff in zip(runs, own):
        m, cfg = record["metrics"], record["config"]
        method, bits = cfg["quantizer"]["name"], m["bits"]
        psnr = pooled_psnr(m, genuine=True) if "mse_genuine" in m or "psnr_pooled_genuine" in m else None
        legacy = m.get("ssim_legacy_genuine")
        p_psnr, p_ssim = paper_value("psnr", method, bits), paper_value("ssim", method, bits)
        per_epoch = m["train_seconds"] / m["epochs"] if m.get("epochs") else None
        setting = ", ".join(f"{k}={show_value(v)}" for k, v in sorted(diff.items())) or "base"
        code = describe(record.get("code"))
        if record.get("timings", {}).get("train") == 0:  # resume=true on a finished run: scored, not trained
            code += "; record rewritten by a resume=true scoring, trained by an earlier process"
        out.append([method, int(bits), setting, psnr, m.get("psnr_genuine"), p_psnr,
                    None if psnr is None or p_psnr is None else psnr - p_psnr, pooled_psnr(m, genuine=False), legacy,
                    m.get("ssim_genuine"), p_ssim, None if legacy is None or p_ssim is None else legacy - p_ssim,
                    per_epoch, code, Path(record["path"]).name])
    order = {"avq": 0, "rvq": 1, "pvq": 2}
    out.sort(key=lambda r: (r[2] != "base", r[2], order.get(r[0], 9), r[1]))
    return columns, out


def effects(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """Each non-base setting's PSNR change against the base run of the same method and bitrate."""
    i_psnr = columns.index("psnr_genuine")
    base = {(r[0], r[1]): r[i_psnr] for r in rows if r[2] == "base" and r[i_psnr] is not None}
    lines = []
    grouped: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r[2] != "base" and (r[0], r[1]) in base and r[i_psnr] is not None:
            grouped[r[2]].append(f"{r[0].upper()} {r[1]} bits {r[i_psnr] - base[r[0], r[1]]:+.2f} dB")
    for setting, parts in sorted(grouped.items()):
        lines.append(f"- `{setting}`: " + ", ".join(parts) + " (genuine PSNR against the base run).")
    return lines


def page(runs: list[dict[str, Any]], base: dict[str, Any]) -> tuple[str, str]:
    shared, own = split_settings(runs, base)
    columns, rows = rows_of(runs, own)
    data = sorted({f"{Path(str(r['config']['dataset'].get('root'))).name}" for r in runs})
    genuine = sorted({Path(str(r['config']['dataset'].get('genuine_test'))).name for r in runs
                      if r['config']['dataset'].get('genuine_test')})
    lines = ["# Fig. 4 calibration: protocols tried and their measured effect", "",
             f"{len(runs)} VQ-VAE runs, each trained on {', '.join(data)} and scored on the test images of "
             f"{', '.join(genuine) or '(no genuine_test)'} (original pixels: `*_genuine` columns) and on its own test "
             "split (`psnr_jpeg_test`). PSNR is that of the test set's pooled MSE (Fig. 4b's convention, see its "
             "section 'PSNR conventions'); `psnr_per_image_genuine` is the mean of each image's PSNR. Paper values: Vali & Bäckström, ICASSP 2023, Fig. 4a/4b means.",
             "", "Base protocol (the settings all rows share, and " + (", ".join(f"`{k}={show_value(v)}`" for k, v in
             sorted(base.items())) or "nothing else") + " as given by `--base`; `setting` names what a row changes; "
             "a key a run's record predates is read at today's default):", "",
             "- " + ", ".join(f"`{k}={show_value(v)}`" for k, v in sorted(shared.items())), "",
             to_markdown(columns, rows), "", "## Effect of each tried setting", ""]
    lines += effects(columns, rows) or ["(no setting was tried beside a base run of the same method and bitrate)"]
    lines += ["", "Train time per epoch: seconds of training (no evaluation) per epoch, one thread; other jobs shared "
              "the machine's 2 cores while these ran, so times are upper bounds.", ""]
    return "\n".join(lines), to_csv(columns, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the page (.md); a .csv is written beside it")
    ap.add_argument("--base", nargs="*", default=[], metavar="KEY=VALUE",
                    help="the base protocol's values of keys the runs vary (e.g. experiment.epochs=2)")
    args = ap.parse_args(argv)
    base = {}
    for item in args.base:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--base takes KEY=VALUE, got {item!r}")
        base[key] = yaml.safe_load(value)
    md, csv = page(read_runs(args.runs), base)
    write_text_atomic(args.out, md)
    write_text_atomic(args.out.with_suffix(".csv"), csv)
    print(f"fig4_calibration: {len(args.runs)} runs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
