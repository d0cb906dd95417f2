#!/usr/bin/env bash
# Regenerate results/vqvae_cifar10.{md,csv} and the reconstruction grids under
# results/vqvae_cifar10/: VQ-VAE on the CIFAR-10 JPEG development copy with the
# experiment=vqvae_quick preset (10,000 training images, 3 epochs, 1,000 test images):
#   * AVQ / RVQ / PVQ trained by NSVQ at 12, 24 and 40 bits per latent vector (M = 4);
#   * NSVQ vs STE vs EMA (optimizer=kmeans) with RVQ at 24 bits.
# Runs one after another under nice (about an hour on 2 shared cores, AVQ at 40 bits alone
# about half of it). A finished run (metrics.json present) is skipped and a stopped one
# resumes from its checkpoint, so the script can simply be started again.
# Usage: bash scripts/vqvae_table.sh [extra hydra overrides]
#   VQBENCH_CIFAR10_JPG  the .tar.gz or train/test tree (default ../shared/data/cifar10/cifar10-jpg.tar.gz)
#   VQBENCH_THREADS      torch threads per run (default 1: on a 2-core machine shared with other
#                        jobs one thread was ~4x faster than two, which wait on each other)
#   VQVAE_TABLE_DIR      where the runs go (default runs/vqvae_table)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${VQBENCH_CIFAR10_JPG:-../shared/data/cifar10/cifar10-jpg.tar.gz}
threads=${VQBENCH_THREADS:-1}
out=${VQVAE_TABLE_DIR:-runs/vqvae_table}
common=(experiment=vqvae_quick dataset=image_folder "dataset.root=$data" progress=false "$@")

run() {
  local tag=$1; shift
  local dir=$out/$tag resume=false
  if [[ -f $dir/metrics.json ]]; then echo "== $tag: done, skipped"; return; fi
  [[ -f $dir/checkpoint.pt ]] && resume=true
  echo "== $tag: vqbench ${common[*]} $* (resume=$resume)"
  OMP_NUM_THREADS=$threads nice -n 10 vqbench "${common[@]}" "$@" resume=$resume "hydra.run.dir=$dir"
}

for q in pvq rvq; do
  for b in 3 6 10; do run "$q-nsvq-$((4 * b))" quantizer=$q optimizer=nsvq quantizer.bits_per_codebook=$b; done
done
run rvq-ste-24 quantizer=rvq optimizer=ste quantizer.bits_per_codebook=6
run rvq-kmeans-24 quantizer=rvq optimizer=kmeans quantizer.bits_per_codebook=6
for b in 3 6 10; do run "avq-nsvq-$((4 * b))" quantizer=avq optimizer=nsvq quantizer.bits_per_codebook=$b; done

OUT_DIR=$out DATA=$data THREADS=$threads EXTRA="$*" python - <<'EOF'
import json, os, shutil
from pathlib import Path
from vqbench.report import to_csv, to_markdown, write_text_atomic

out, results = Path(os.environ["OUT_DIR"]), Path("results")
grids = Path("results/vqvae_cifar10")
shown = ("avq-nsvq-40", "rvq-nsvq-24", "rvq-ste-24")  # grids copied into results/ (~140 KB each)
order = ["pvq-nsvq-12", "pvq-nsvq-24", "pvq-nsvq-40", "rvq-nsvq-12", "rvq-nsvq-24", "rvq-nsvq-40",
         "avq-nsvq-12", "avq-nsvq-24", "avq-nsvq-40", "rvq-ste-24", "rvq-kmeans-24"]
columns = ["run", "quantizer", "optimizer", "bits/vector", "bits/image", "PSNR (dB)", "SSIM", "MSE",
           "PSNR untrained (dB)", "perplexity (mean of 4)", "encode ops/vector", "epochs",
           "train images", "train (s)", "wall (s)", "grid"]
rows, env = [], None
for tag in order:
    f = out / tag / "metrics.json"
    if not f.is_file():
        continue
    r = json.loads(f.read_text())
    m, c, env = r["metrics"], r["config"], r["environment"]
    grid = ""
    if tag in shown:
        grids.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / tag / "reconstructions.png", grids / f"{tag}.png")
        grid = f"[{tag}.png](vqvae_cifar10/{tag}.png)"
    opt = {"kmeans": "EMA"}.get(c["optimizer"]["name"], c["optimizer"]["name"].upper())
    rows.append([tag, c["quantizer"]["name"].upper(), opt, int(m["bits"]), int(m["bits_per_image"]), round(m["psnr"], 2),
                 round(m["ssim"], 4), round(m["mse"], 5), round(m["psnr_untrained"], 2), round(m["perplexity_mean"], 1),
                 int(m["encode_ops"]), int(m["epochs"]), int(m["train_images"]), round(m["train_seconds"]),
                 round(r["timings"]["total"]), grid])

# A data-driven reading of the rows: ranking by PSNR per bitrate (NSVQ) and per optimizer.
by_bits = {}
for row in rows:
    if row[2] == "NSVQ":
        by_bits.setdefault(row[3], []).append(row)
lines = []
for bits in sorted(by_bits):
    ranked = sorted(by_bits[bits], key=lambda row: -row[5])
    lines.append(f"- {bits} bits/vector, NSVQ: " + " > ".join(f"{row[1]} {row[5]:.2f} dB" for row in ranked))
opts = sorted((row for row in rows if row[1] == "RVQ" and row[3] == 24), key=lambda row: -row[5])
if len(opts) > 1:
    lines.append("- RVQ at 24 bits/vector: " + " > ".join(f"{row[2]} {row[5]:.2f} dB" for row in opts))
total = sum(row[14] for row in rows)
note = f"""Data: **CIFAR-10 JPEG development copy** (`{os.environ['DATA']}`: the 60,000 CIFAR-10 images
as JPEG, quality 75, in `train|test/<class>/*.jpg`; not the original binaries, so numbers are not
directly comparable with results on the official archive). A seeded subset of 10,000 training
images and 1,000 test images (seed 0) is used by every run.

Command: `bash scripts/vqvae_table.sh` (runs in `{out}`), i.e. for each row
`vqbench experiment=vqvae_quick dataset=image_folder dataset.root={os.environ['DATA']} quantizer=Q optimizer=O quantizer.bits_per_codebook=B`
{('with extra overrides `' + os.environ['EXTRA'] + '`') if os.environ['EXTRA'] else ''}
Preset `vqvae_quick`: encoder 2 strided 4x4 convs (32, 64 channels) + 3x3 conv + 2 residual blocks
-> 8x8 grid of 64-dim latents, mirrored decoder ({int(m['parameters']):,} parameters); M = 4 codebooks
(PVQ: 16-dim subspaces; AVQ beam width 16); Adam lr 1e-3 with cosine decay, batch 64, 3 epochs;
loss = pixel MSE / training-pixel variance (+ for STE codebook + 0.25 commitment loss, for EMA
0.25 commitment loss, EMA decay 0.99); dead codewords replaced every 25 batches.
Codebooks are seeded from the untrained encoder's latents.

PSNR (dB, images in [0, 1]) and SSIM (Gaussian 11x11, sigma 1.5) are per-image means over the
test images; MSE is per pixel; "PSNR untrained" is the same model before training. bits/image =
64 latent positions x bits/vector. Encode ops/vector: weighted operations (ITU-T G.191 weights) to
encode one latent vector, from `vqbench.complexity`. Train (s) is the training time summed over
epochs, wall (s) the whole command (data loading, evaluations each epoch, grid). CPU only,
{env['torch_threads'] if env else '?'} torch thread(s), `nice -n 10`, on a 2-core machine shared with
other jobs, torch {env['torch'] if env else '?'}: times are indicative only.

Grids (linked in the last column for a few runs; every run directory has its own
`reconstructions.png`): 32 test images spread over the classes, originals (odd rows) above their
reconstructions (even rows)."""
ranking = "Test PSNR ranking (from the table):\n\n" + "\n".join(lines) + f"\n\nAll {len(rows)} runs: {total / 60:.0f} min of wall time."
md = ("# VQ-VAE on CIFAR-10 (development JPEG copy): reconstruction quality vs bitrate and optimizer\n\n"
      + note + "\n\n" + to_markdown(columns, rows) + "\n\n" + ranking + "\n")
write_text_atomic(results / "vqvae_cifar10.md", md)
write_text_atomic(results / "vqvae_cifar10.csv", to_csv(columns, rows))
print(f"wrote results/vqvae_cifar10.md and .csv ({len(rows)} runs)")
EOF
