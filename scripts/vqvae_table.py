"""Collect the VQ-VAE runs of scripts/vqvae_table.sh into results/vqvae_cifar10.{md,csv}.

One row per (quantizer, optimizer, bits) with the mean and standard deviation over the seeds
that ran; the settings paragraph is generated from the runs' recorded configs (vqbench.report.tables).

    python scripts/vqvae_table.py runs/vqvae_table --out results/vqvae_cifar10 \\
        --grids avq-nsvq-40-s0 rvq-nsvq-24-s0 --command "bash scripts/vqvae_table.sh"
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

from vqbench.report.tables import load_runs_or_report, mean_sd, settings_note, write_table

OPT_LABEL = {"kmeans": "EMA", "nsvq": "NSVQ", "ste": "STE"}
ORDER = {"pvq": 0, "rvq": 1, "avq": 2, "vq": 3}
COLUMNS = ["quantizer", "optimizer", "bits/vector", "bits/image", "seeds", "PSNR (dB)", "PSNR sd", "SSIM",
           "SSIM sd", "MSE", "PSNR untrained (dB)", "perplexity (mean of M)", "encode ops/vector", "epochs",
           "train images", "train (s)", "wall (s)", "grid"]

DATA_NOTE = """Data: **CIFAR-10 JPEG development copy** (the 60,000 CIFAR-10 images as JPEG, quality 75, in
`train|test/<class>/*.jpg`; not the original binaries, so numbers are not directly comparable with
results on the official archive)."""

METRICS_NOTE = """PSNR (dB, images in [0, 1]) and SSIM (Gaussian 11x11, sigma 1.5) are per-image means over the
test images, then mean and standard deviation (sd) over the seeds of a row; MSE is per pixel; "PSNR
untrained" is the same model before training. bits/image = latent positions x bits/vector. Encode
ops/vector: weighted operations (ITU-T G.191 weights) to encode one latent vector. Train (s) is the
training time summed over epochs, wall (s) the whole command, both means over seeds; times are
indicative only (shared machine; environment below). Grids: test images (odd rows) above their
reconstructions (even rows)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="directory holding one sub-directory per run")
    ap.add_argument("--out", type=Path, default=Path("results/vqvae_cifar10"))
    ap.add_argument("--grids", nargs="*", default=[], help="run names whose reconstructions.png are copied")
    ap.add_argument("--command", default="bash scripts/vqvae_table.sh", help="the command, for the note")
    args = ap.parse_args(argv)
    runs = load_runs_or_report([args.runs], "vqvae_table", experiment="vqvae")
    if runs is None:
        return 1
    grid_dir = args.out.parent / args.out.name
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = (ORDER.get(r["quantizer"]["name"], 9), r["quantizer"]["name"], r["optimizer"]["name"], r["metrics"]["bits"])
        groups.setdefault(key, []).append(r)
    rows = []
    for key in sorted(groups):
        rs = groups[key]
        m = [r["metrics"] for r in rs]
        psnr, psnr_sd = mean_sd([x["psnr"] for x in m])
        ssim, ssim_sd = mean_sd([x["ssim"] for x in m])
        grid = ""
        for r in rs:
            name = Path(r["path"]).name
            if name in args.grids:
                grid_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(r["path"]) / "reconstructions.png", grid_dir / f"{name}.png")
                grid = f"[{name}.png]({grid_dir.name}/{name}.png)"
        rows.append([key[1].upper(), OPT_LABEL.get(key[2], key[2]), int(key[3]), int(m[0]["bits_per_image"]), len(rs),
                     psnr, psnr_sd, ssim, ssim_sd, statistics.fmean(x["mse"] for x in m),
                     statistics.fmean(x["psnr_untrained"] for x in m if "psnr_untrained" in x) if "psnr_untrained" in m[0] else None,
                     statistics.fmean(x["perplexity_mean"] for x in m), int(m[0]["encode_ops"]), int(m[0]["epochs"]),
                     int(m[0]["train_images"]), statistics.fmean(x["train_seconds"] for x in m),
                     statistics.fmean(r["timings"]["total"] for r in rs), grid])
    env = runs[0]["environment"]
    ranking = []
    for bits in sorted({row[2] for row in rows}):
        same = sorted((row for row in rows if row[2] == bits), key=lambda row: -row[5])
        if len(same) > 1:
            ranking.append(f"- {bits} bits/vector: " + " > ".join(
                f"{row[0]}/{row[1]} {row[5]:.2f} dB" + (f" (sd {row[6]:.2f}, {row[4]} seeds)" if row[6] is not None else "")
                for row in same))
    notes = [DATA_NOTE, f"Command: `{args.command}`.",
             settings_note(runs, ["dataset", "experiment", "optimizer"], "optimizer.name"),
             METRICS_NOTE,
             f"Environment: torch {env.get('torch')}, {env.get('torch_threads')} torch thread(s), device {env.get('device')}."]
    after = "Test PSNR ranking (from the table):\n\n" + "\n".join(ranking) if ranking else ""
    write_table(args.out, "VQ-VAE on CIFAR-10 (development JPEG copy): reconstruction quality vs bitrate and optimizer",
                notes, COLUMNS, rows, after_table=after)
    print(f"wrote {args.out.with_suffix('.md')} and .csv ({len(rows)} rows from {len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
