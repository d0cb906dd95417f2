#!/usr/bin/env bash
# Regenerate the paper's figures 2-6: every figure's sweep, then the report into results/paper/.
#
#   bash scripts/reproduce_paper.sh [--quick] [FIGURE ...]        FIGURE: fig2a fig2b fig3 fig4 fig5 fig6
#
# --quick runs each figure's quick preset (fewer seeds, steps, images or base vectors; each preset
# file in conf/paper/ says what it changes). Data roots come from the environment:
#   CIFAR10=PATH         CIFAR-10 as an image-folder tree or .tar.gz of one (default: torchvision's
#                        official archive, downloaded into the cache)
#   SIFT_ROOT=DIR        TEXMEX layout {SIFT_PREFIX}_{base,learn,query}.{fvecs,bvecs} + _groundtruth.ivecs
#   SIFT_PREFIX=sift     (default: vqbench-data download sift1m's cache)
#   LAUNCHER="hydra/launcher=joblib hydra.launcher.n_jobs=2"   parallel jobs (pip install -e '.[cluster]')
# A figure whose sweep has failed jobs goes on to the next; the report lists every failed,
# incomplete or missing point.
set -uo pipefail
cd "$(dirname "$0")/.."

suffix="" mode=full
figures=()
for arg in "$@"; do
  case "$arg" in
    --quick) suffix=_quick mode=quick ;;
    fig2a|fig2b|fig3|fig4|fig5|fig6) figures+=("$arg") ;;
    *) echo "reproduce_paper.sh: unknown argument '$arg' (use --quick and figure names fig2a fig2b fig3 fig4 fig5 fig6)" >&2; exit 2 ;;
  esac
done
[ ${#figures[@]} -gt 0 ] || figures=(fig2a fig2b fig3 fig4 fig5 fig6)

data_args() {
  case "$1" in
    fig4) [ -n "${CIFAR10:-}" ] && echo "dataset=image_folder dataset.root=$CIFAR10" ;;
    fig5|fig6) [ -n "${SIFT_ROOT:-}" ] && echo "dataset.root=$SIFT_ROOT dataset.prefix=${SIFT_PREFIX:-sift}" ;;
  esac
}

status=0
for fig in "${figures[@]}"; do
  start=$(date +%s)
  # shellcheck disable=SC2046  # word splitting of the data and launcher arguments is intended
  vqbench -m "+paper=${fig}${suffix}" progress=false $(data_args "$fig") ${LAUNCHER:-}
  rc=$?
  echo "reproduce_paper: ${fig}${suffix} finished with status $rc in $(( $(date +%s) - start )) s" >&2
  [ "$rc" -eq 0 ] || status=1
done

# One page per panel of the figures run (complexity panels 4c and 6b are counted, not run).
shopt -s nullglob
sweeps=(multirun/paper/*-"$mode")
if [ ${#sweeps[@]} -eq 0 ]; then
  echo "reproduce_paper: no sweep directory multirun/paper/*-$mode to report" >&2
  exit 1
fi
vqbench-report "${sweeps[@]}" --figure "${figures[@]}" --out results/paper || status=1
exit "$status"
