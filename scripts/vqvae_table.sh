#!/usr/bin/env bash
# Regenerate results/vqvae_cifar10.{md,csv} and the reconstruction grids under
# results/vqvae_cifar10/: VQ-VAE on the CIFAR-10 JPEG development copy with the
# experiment=vqvae_quick preset (10,000 training images, 3 epochs, 1,000 test images):
#   * AVQ / RVQ / PVQ trained by NSVQ at 12, 24 and 40 bits per latent vector (M = 4);
#   * NSVQ vs STE vs EMA (optimizer=kmeans) with RVQ at 24 bits, all at one optimizer.init;
#   each for every seed of VQBENCH_SEEDS (default 0 1 2); the table shows mean and sd over seeds.
# Runs one after another under nice (about an hour per seed on 2 shared cores, AVQ at 40 bits alone
# about half of it). A finished run (metrics.json present) is skipped and a stopped one
# resumes from its checkpoint, so the script can simply be started again.
# Usage: bash scripts/vqvae_table.sh [extra hydra overrides]
#   VQBENCH_CIFAR10_JPG  the .tar.gz or train/test tree (default ../shared/data/cifar10/cifar10-jpg.tar.gz)
#   VQBENCH_THREADS      torch threads per run (default 1: on a 2-core machine shared with other
#                        jobs one thread was ~4x faster than two, which wait on each other)
#   VQVAE_TABLE_DIR      where the runs go (default runs/vqvae_table)
#   VQBENCH_SEEDS        seeds per row (default "0 1 2")
#   VQVAE_INIT           optimizer.init of every run: data (default) or random
set -euo pipefail
cd "$(dirname "$0")/.."
data=${VQBENCH_CIFAR10_JPG:-../shared/data/cifar10/cifar10-jpg.tar.gz}
threads=${VQBENCH_THREADS:-1}
out=${VQVAE_TABLE_DIR:-runs/vqvae_table}
seeds=${VQBENCH_SEEDS:-0 1 2}
init=${VQVAE_INIT:-data}   # the same optimizer.init for NSVQ, STE and EMA, so the rows compare optimizers
common=(experiment=vqvae_quick dataset=image_folder "dataset.root=$data" "optimizer.init=$init" progress=false "$@")

run() {
  local tag=$1; shift
  local dir=$out/$tag resume=false
  if [[ -f $dir/metrics.json ]]; then echo "== $tag: done, skipped"; return; fi
  [[ -f $dir/checkpoint.pt ]] && resume=true
  echo "== $tag: vqbench ${common[*]} $* (resume=$resume)"
  OMP_NUM_THREADS=$threads nice -n 10 vqbench "${common[@]}" "$@" resume=$resume "hydra.run.dir=$dir"
}

for seed in $seeds; do
  for q in pvq rvq avq; do
    for b in 3 6 10; do run "$q-nsvq-$((4 * b))-s$seed" quantizer=$q optimizer=nsvq quantizer.bits_per_codebook=$b seed=$seed; done
  done
  # NSVQ vs STE vs EMA at the same bitrate and the same codebook initialisation
  run "rvq-ste-24-s$seed" quantizer=rvq optimizer=ste quantizer.bits_per_codebook=6 seed=$seed
  run "rvq-kmeans-24-s$seed" quantizer=rvq optimizer=kmeans quantizer.bits_per_codebook=6 seed=$seed
done

python scripts/vqvae_table.py "$out" --out results/vqvae_cifar10 --grids avq-nsvq-40-s0 rvq-nsvq-24-s0 rvq-ste-24-s0 \
  --command "VQBENCH_SEEDS='$seeds' VQVAE_INIT=$init bash scripts/vqvae_table.sh $*"
