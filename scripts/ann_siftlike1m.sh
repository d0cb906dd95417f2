#!/usr/bin/env bash
# Full-scale ANN runs on siftlike1m (1M base, 100k learn, 10k queries) at 64 bits (M=8, K=256),
# one run at a time, then the table in results/ann_siftlike1m.{md,csv}.
#   ROOT=../shared/data/siftlike1m bash scripts/ann_siftlike1m.sh [run names...]
# Run names: pvq-kmeans (also runs the faiss baselines PQ, OPQ+PQ, RQ beam 1 and RQ beam 4), rvq-kmeans,
# pvq-nsvq, pvq-ste, rvq-nsvq, rvq-ste, avq-kmeans, avq-nsvq, avq-ste (AVQ at beam 4), faiss-rq64-lsq
# (faiss RQ at beam 64 and LSQ: ~30-50 min on one core, 10 GB peak for RQ's beam-64 training),
# avq64-kmeans (AVQ at the preset beam 64; ~2 h on one core with the torch beam search) and
# avq64-nsvq, avq64-ste (NSVQ/STE at beam 64: need the compiled beam search, avq_numba.py).
# Default: all of them. KEEP=results/ann_siftlike1m.csv keeps the rows of runs not present here;
# AVQ64_ITERS=N shortens the avq64-nsvq/ste training (default 2000 steps, as GRAD).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-../shared/data/siftlike1m}
OUT=${OUT:-runs/ann_siftlike1m}
PY=${PYTHON:-python}
COMMON=(experiment=ann "dataset.root=$ROOT" dataset.prefix=siftlike)
# gradient optimizers: 2000 Adam steps of 1024 vectors (~20 epochs of the 100k learn set) at the
# default lr 0.05 (in units of the data's std; 37 on siftlike1m, so 1.86 absolute). Absolute steps
# of 0.01 / 0.1 / 1.0 were tried on a 100k-base cut: 1.0 was best for both PVQ and RVQ.
GRAD=(optimizer.steps=2000 optimizer.batch_size=1024)
# AVQ: beam 4; the avq64-* rows use the preset 64 (the compiled beam search encodes ~1-2k vectors/s at
# beam 64 on one core, so 2,000 NSVQ/STE steps take 20-60 min per row; see results/ann_siftlike1m.md)
AVQ=(quantizer=avq quantizer.beam_width=4)

declare -A ARGS=(
  [pvq-kmeans]="quantizer=pvq optimizer=kmeans experiment.baselines=[pq,opq,rq,rq_beam] experiment.rq_beam_width=4"
  [rvq-kmeans]="quantizer=rvq optimizer=kmeans"
  [pvq-nsvq]="quantizer=pvq optimizer=nsvq ${GRAD[*]}"
  [pvq-ste]="quantizer=pvq optimizer=ste ${GRAD[*]}"
  [rvq-nsvq]="quantizer=rvq optimizer=nsvq ${GRAD[*]}"
  [rvq-ste]="quantizer=rvq optimizer=ste ${GRAD[*]}"
  [avq-kmeans]="${AVQ[*]} optimizer=kmeans"
  [avq-nsvq]="${AVQ[*]} optimizer=nsvq ${GRAD[*]}"
  [avq-ste]="${AVQ[*]} optimizer=ste ${GRAD[*]}"
  # the slow ones: faiss RQ beam 64 + LSQ, and AVQ k-means at the preset beam 64
  [faiss-rq64-lsq]="quantizer=pvq optimizer=kmeans experiment.baselines=[rq_beam,lsq] experiment.baselines_only=true experiment.rq_beam_width=64"
  [avq64-kmeans]="quantizer=avq quantizer.beam_width=64 optimizer=kmeans"
  [avq64-nsvq]="quantizer=avq quantizer.beam_width=64 optimizer=nsvq optimizer.steps=${AVQ64_ITERS:-2000} optimizer.batch_size=1024"
  [avq64-ste]="quantizer=avq quantizer.beam_width=64 optimizer=ste optimizer.steps=${AVQ64_ITERS:-2000} optimizer.batch_size=1024"
)
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(pvq-kmeans rvq-kmeans pvq-nsvq pvq-ste rvq-nsvq rvq-ste avq-kmeans avq-nsvq avq-ste
                                faiss-rq64-lsq avq64-kmeans avq64-nsvq avq64-ste)
mkdir -p "$OUT"
for name in "${NAMES[@]}"; do
  [ -n "${ARGS[$name]+x}" ] || { echo "unknown run $name" >&2; exit 2; }
  if [ -f "$OUT/$name/metrics.json" ]; then echo "skip $name (done)"; continue; fi
  echo "== $name: vqbench ${COMMON[*]} ${ARGS[$name]}"
  # shellcheck disable=SC2086
  nice -n 10 "$PY" -m vqbench "${COMMON[@]}" ${ARGS[$name]} "hydra.run.dir=$OUT/$name" > "$OUT.$name.log" 2>&1 \
    || { echo "$name failed, see $OUT.$name.log" >&2; exit 1; }
done
"$PY" scripts/ann_table.py "$OUT" --out results/ann_siftlike1m --title "ANN search on siftlike1m at 64 bits" \
  --notes results/ann_siftlike1m_notes.md ${KEEP:+--keep "$KEEP"}
