#!/usr/bin/env bash
# Regenerate results/toy.md + results/toy.csv: MSE and gap to the Gaussian rate-distortion
# bound for RVQ/PVQ/AVQ x NSVQ/STE/k-means at 12..40 bits (M = 4, 64-dim), plus VQ at 12 bits
# (VQ at >= 16 bits needs K >= 65,536 codewords: more than the 32,768 training vectors).
# Usage: bash scripts/toy_table.sh [extra hydra overrides]   (about an hour on 2 cores)
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # one thread per run: the sweep shares a small machine
cd "$(dirname "$0")/.."
stamp=$(date +%Y-%m-%d_%H-%M-%S)
sweep=${REPORT_ONLY:-multirun/toy_table/$stamp}   # REPORT_ONLY=<sweep dir>: only re-tabulate it
mkdir -p "$sweep"
common=(dataset.num_train=32768 dataset.num_test=8192 progress=false "$@")
# Each optimizer has its own keys: the gradient ones count Adam steps, k-means Lloyd iterations.
gradient=(optimizer=nsvq,ste optimizer.steps=600 optimizer.batch_size=256)
kmeans=(optimizer=kmeans optimizer.lloyd_iterations=600 optimizer.alternations=2)   # 600: as in the committed table
sweep_kind() {  # all runs on one kind of data
  local kind=$1 opt
  for opt in gradient kmeans; do
    local -n args=$opt
    vqbench -m experiment=toy dataset.kind=$kind quantizer=rvq,pvq,avq "${args[@]}" \
      quantizer.num_codebooks=4 quantizer.bits_per_codebook=3,4,6,8,10 "${common[@]}" \
      hydra.sweep.dir=$sweep/$kind-m4-$opt
    vqbench -m experiment=toy dataset.kind=$kind quantizer=vq "${args[@]}" \
      quantizer.bits_per_codebook=12 "${common[@]}" hydra.sweep.dir=$sweep/$kind-vq-$opt
  done
}
# The two data kinds run side by side, one core each.
if [ -z "${REPORT_ONLY:-}" ]; then
  sweep_kind correlated > "$sweep.correlated.log" 2>&1 &
  sweep_kind uncorrelated > "$sweep.uncorrelated.log" 2>&1 &
  wait %1 && wait %2
fi
python -m vqbench.report "$sweep" --out results/toy --title "Toy Gaussian data: MSE vs bitrate (vqbench)" \
  --note "Command: \`OMP_NUM_THREADS=$OMP_NUM_THREADS bash scripts/toy_table.sh\` (sweep dir \`$sweep\`). Data: correlated = Gaussian with Toeplitz covariance rho^|i-j|, uncorrelated = N(0, I); train and test sets are independent draws. MSE is per vector (sum over the dims) on the test set; gap = 10 log10(MSE / D(R)) with D(R) the reverse water-filling bound at the same bits per vector. Wall time (s) is the whole run on a shared 2-core machine." \
  --settings seed dataset quantizer optimizer --settings-by optimizer.name \
  --columns dataset.kind quantizer.name optimizer.name metrics.bits metrics.mse metrics.rd_bound_mse metrics.rd_gap_db metrics.snr_db metrics.perplexity_mean timings.total \
  --headers data quantizer optimizer bits MSE "R-D bound" "gap (dB)" "SNR (dB)" perplexity "wall (s)" \
  --sort dataset.kind quantizer.name optimizer.name metrics.bits \
  --pivot-rows dataset.kind quantizer.name optimizer.name --pivot-column metrics.bits \
  --pivot-values metrics.mse metrics.rd_gap_db timings.total
