#!/usr/bin/env bash
# Issue 25, part 2: AVQ (beam 64) trained by NSVQ with and without the least-squares refinement
# (optimizer.refine=K) against faiss LSQ, on siftlike1m at 64 bits (M=8, K=256), at 3 seeds, one
# thread per run (so wall seconds are CPU seconds), then the page results/ann_refine.{md,csv}.
#   ROOT=../shared/data/siftlike1m bash scripts/ann_refine.sh
# Environment: SEEDS ("0 1 2"), REFINE (rounds, 3), STEPS (NSVQ Adam steps, 2000, as ann_siftlike1m.sh),
# BEAM (64), OUT (runs/ann_refine), PAGE (results/ann_refine), and for a smoke run only:
# EXTRA (more overrides, e.g. "dataset.max_base=2000 dataset.max_queries=50 dataset.max_train=3000
# experiment.search_k=100"). Finished runs (metrics.json present) are skipped.
# Campaign ledger (as scripts/reproduce_paper.sh): LEDGER (results/campaigns/ann-refine; '' for none)
# is restored into OUT first and each finished run's record saved into it; COMMIT=1 git-commits the
# ledger after each run, so the six runs (about an hour each at one thread) carry across sessions.
# Runs per seed: avq64-nsvq-s<seed> (refine off), avq64-nsvq-refine-s<seed> (refine on; this run also
# trains and evaluates faiss LSQ, experiment.baselines=[lsq], on the same learn vectors).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-../shared/data/siftlike1m}
OUT=${OUT:-runs/ann_refine}
PAGE=${PAGE:-results/ann_refine}
PY=${PYTHON:-python}
SEEDS=${SEEDS:-0 1 2}
REFINE=${REFINE:-3}
STEPS=${STEPS:-2000}
BEAM=${BEAM:-64}
COMMON=(experiment=ann "dataset.root=$ROOT" dataset.prefix=siftlike threads=1 progress=false
        quantizer=avq "quantizer.beam_width=$BEAM" optimizer=nsvq "optimizer.steps=$STEPS" optimizer.batch_size=1024)
LEDGER=${LEDGER-results/campaigns/ann-refine}
COMMIT=${COMMIT:-0}
mkdir -p "$OUT"
if [ -n "$LEDGER" ]; then "$PY" -m vqbench.run.ledger restore "$LEDGER" "$OUT"; fi
save_ledger() {  # one finished run's record into the ledger, committed when COMMIT=1
  [ -n "$LEDGER" ] || return 0
  "$PY" -m vqbench.run.ledger save "$OUT" "$LEDGER"
  if [ "$COMMIT" = 1 ] && [ -n "$(git status --porcelain -- "$LEDGER")" ]; then
    git add -- "$LEDGER" && git commit -q -m "ledger: ann-refine $1 recorded" -- "$LEDGER"
  fi
}
for seed in $SEEDS; do
  for variant in plain refine; do
    name="avq${BEAM}-nsvq-s$seed"; args=(optimizer.refine=0)
    if [ "$variant" = refine ]; then name="avq${BEAM}-nsvq-refine-s$seed"; args=("optimizer.refine=$REFINE" "experiment.baselines=[lsq]"); fi
    if [ -f "$OUT/$name/metrics.json" ]; then echo "skip $name (done)"; continue; fi
    echo "== $name"
    # shellcheck disable=SC2086
    nice -n 10 "$PY" -m vqbench "${COMMON[@]}" "seed=$seed" "${args[@]}" ${EXTRA:-} "hydra.run.dir=$OUT/$name" \
      > "$OUT/$name.log" 2>&1 || { echo "$name failed, see $OUT/$name.log" >&2; exit 1; }
    save_ledger "$name"
  done
done
"$PY" scripts/ann_refine_table.py "${LEDGER:-$OUT}" --out "$PAGE"  # the committed records, when a ledger is kept
