#!/usr/bin/env bash
# Regenerate the paper's figures 2-6: each figure's sweep (resumable), then the report pages.
# `bash scripts/reproduce_paper.sh --help` lists figures, flags and environment variables.
set -uo pipefail
cd "$(dirname "$0")/.."

ALL_FIGURES=(fig2a fig2b fig3 fig4 fig5 fig6)

usage() {
  cat <<'EOF'
Usage: bash scripts/reproduce_paper.sh [--quick] [--out DIR] [--chunk I/N] [--ledger DIR | --no-ledger] [--commit]
                                     [--no-report] [--dry-run] [FIGURE ...]

Runs each FIGURE's sweep (conf/paper/<figure>[_quick].yaml), then writes its report pages
(<figure>.md, .csv, .png and README.md) into --out. Without FIGURE: all of them.

Figures:
  fig2a fig2b fig3 fig4 fig5 fig6   (fig3 reports 64 dims from fig2b's runs; 4c and 6b are counted)

Flags:
  --quick        the quick presets (fewer seeds, steps, images or base vectors; each preset says what)
  --out DIR      where the pages go (default reports/paper, as vqbench-report --figure; only --out
                 results/paper writes over the committed pages); checked before the sweeps run
  --chunk I/N    run only the I-th of N interleaved slices of each figure's job list (e.g. 1/8 ... 8/8,
                 one slice per batch job of bounded wall time); every slice uses the same sweep
                 directory, so the report sees the union. Slices of one figure run one at a time.
  --ledger DIR   the campaign ledger (default results/campaigns): before each sweep its records of that
                 figure are restored into the sweep directory (so finished jobs are skipped, on a fresh
                 clone too), after it the sweep's finished records are saved into DIR/<figure>-<mode>/
  --no-ledger    neither restore nor save
  --commit       git-commit DIR/<figure>-<mode> after each sweep (chunk), when it changed
  --no-report    run the sweeps only
  --dry-run      print the commands, run nothing
  -h, --help     this text

Resuming: every figure sweeps into a fixed directory, $SWEEPS/<figure>-<quick|full>/campaign, with
resume=true: run the same command again (after a kill, a preemption, a failed job) and the jobs
that finished with the same config are skipped; failed and unfinished jobs run again.

Threads: one per job (OMP_NUM_THREADS=MKL_NUM_THREADS=NUMBA_NUM_THREADS=OPENBLAS_NUM_THREADS=1;
torch and faiss follow OMP_NUM_THREADS); run jobs side by side with LAUNCHER.

Environment:
  CIFAR10=PATH      CIFAR-10 as an image-folder tree or .tar.gz of one (default: torchvision's archive,
                    downloaded into the cache)
  GENUINE=PATH      .npz of test images with their original pixels, scored beside the test split
                    (Fig. 4's pages take PSNR/SSIM from it; e.g. cifar10-genuine-5k.npz beside a JPEG copy)
  SIFT_ROOT=DIR     TEXMEX layout {SIFT_PREFIX}_{base,learn,query}.{fvecs,bvecs} + _groundtruth.ivecs
  SIFT_PREFIX=NAME  (default sift; without SIFT_ROOT: vqbench-data download sift1m's cache)
  LAUNCHER="hydra/launcher=joblib hydra.launcher.n_jobs=2"   parallel jobs (pip install -e '.[cluster]')
  SWEEPS=DIR        root of the sweep directories (default multirun/paper)
  OVERRIDES="K=V ..."  extra Hydra overrides for every sweep (e.g. a smaller size for a test)

Exit status: 0 when every sweep and the report succeeded, 1 when a sweep had failed or unfinished
jobs (the report lists them) or the report failed, 2 for a bad argument, an --out that cannot be
written, or a sweep that vqbench refused before any job ran (e.g. its directory cannot be written:
the script stops there).
EOF
}

die() {
  echo "reproduce_paper.sh: error: $*; see --help" >&2
  exit 2
}

mode=full suffix="" out=reports/paper chunk="" dry=0 report=1 ledger=results/campaigns commit=0
figures=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --quick) suffix=_quick mode=quick ;;
    --out) [ $# -ge 2 ] && [ -n "$2" ] || die "--out needs a directory"; out=$2; shift ;;
    --out=*) out=${1#--out=}; [ -n "$out" ] || die "--out needs a directory" ;;
    --chunk) [ $# -ge 2 ] || die "--chunk needs I/N (e.g. 2/4)"; chunk=$2; shift ;;
    --chunk=*) chunk=${1#--chunk=} ;;
    --ledger) [ $# -ge 2 ] && [ -n "$2" ] || die "--ledger needs a directory"; ledger=$2; shift ;;
    --ledger=*) ledger=${1#--ledger=}; [ -n "$ledger" ] || die "--ledger needs a directory" ;;
    --no-ledger) ledger="" ;;
    --commit) commit=1 ;;
    --no-report) report=0 ;;
    --dry-run) dry=1 ;;
    fig2a|fig2b|fig3|fig4|fig5|fig6) figures+=("$1") ;;
    *) die "unknown argument '$1' (flags: --quick --out DIR --chunk I/N --ledger DIR --no-ledger --commit --no-report --dry-run --help; figures: ${ALL_FIGURES[*]})" ;;
  esac
  shift
done
if [ -n "$chunk" ]; then
  [[ "$chunk" =~ ^([0-9]+)/([0-9]+)$ ]] || die "--chunk must be I/N with 1 <= I <= N (e.g. 2/4), got '$chunk'"
  i=$((10#${BASH_REMATCH[1]})) n=$((10#${BASH_REMATCH[2]}))
  [ "$i" -ge 1 ] && [ "$i" -le "$n" ] || die "--chunk must be I/N with 1 <= I <= N (e.g. 2/4), got '$chunk'"
  chunk="$i/$n"
fi
[ ${#figures[@]} -gt 0 ] || figures=("${ALL_FIGURES[@]}")

check_out() {  # the pages' directory must be creatable and writable: fail now, not after hours of sweeps
  local d=$1 parent
  while [ ! -e "$d" ] && [ ! -L "$d" ]; do
    parent=$(dirname -- "$d")
    [ "$parent" != "$d" ] || break
    d=$parent
  done
  [ -d "$d" ] || die "--out $out: $d is a file, not a directory"
  [ -w "$d" ] && [ -x "$d" ] || die "--out $out: cannot create files in $d (read-only file system or no permission)"
}
[ "$report" -eq 0 ] || check_out "$out"
sweeps_root=${SWEEPS:-multirun/paper}
threads=(OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)

data_args() {
  case "$1" in
    fig4) [ -n "${CIFAR10:-}" ] && echo "dataset=image_folder dataset.root=$CIFAR10"
          [ -n "${GENUINE:-}" ] && echo "dataset.genuine_test=$GENUINE" ;;
    fig5|fig6) [ -n "${SIFT_ROOT:-}" ] && echo "dataset.root=$SIFT_ROOT dataset.prefix=${SIFT_PREFIX:-sift}" ;;
  esac
}

sweep_dir() { echo "$sweeps_root/$1-$mode/campaign"; }

run() {  # print the command; run it unless --dry-run
  printf '%q ' "$@" | sed 's/ $//'
  echo
  [ "$dry" -eq 1 ] || "$@"
}

[ "$commit" -eq 0 ] || [ -n "$ledger" ] || die "--commit needs the ledger (drop --no-ledger)"

commit_ledger() {  # commit one figure's ledger directory when it changed
  local dir=$1 message=$2 repo
  repo=$(git -C "$dir" rev-parse --show-toplevel 2>/dev/null) || { echo "reproduce_paper: --commit: $dir is not in a git repository" >&2; return 1; }
  git -C "$repo" add -- "$(realpath "$dir")" || return 1
  if git -C "$repo" diff --cached --quiet -- "$(realpath "$dir")"; then return 0; fi
  git -C "$repo" commit -q -m "$message" -- "$(realpath "$dir")"
}

status=0
for fig in "${figures[@]}"; do
  start=$(date +%s)
  book=${ledger:+$ledger/$fig-$mode}
  [ -z "$book" ] || run python -m vqbench.run.ledger restore "$book" "$(sweep_dir "$fig")" || status=1
  # shellcheck disable=SC2046  # word splitting of the data, launcher and extra arguments is intended
  run env "${threads[@]}" vqbench -m "+paper=${fig}${suffix}" progress=false resume=true \
    "hydra.sweep.dir=$(sweep_dir "$fig")" ${chunk:+"hydra.sweeper.chunk=$chunk"} $(data_args "$fig") ${LAUNCHER:-} \
    ${OVERRIDES:-}
  rc=$?
  # 2: refused before any job ran (its one line said why: e.g. the sweep directory cannot be
  # written); the other figures would meet the same, so stop here with that one line.
  [ "$rc" -ne 2 ] || exit 2
  [ "$dry" -eq 1 ] || echo "reproduce_paper: ${fig}${suffix}${chunk:+ chunk $chunk} finished with status $rc in $(( $(date +%s) - start )) s" >&2
  [ "$rc" -eq 0 ] || status=1
  if [ -n "$book" ]; then
    run python -m vqbench.run.ledger save "$(sweep_dir "$fig")" "$book" || status=1
    if [ "$commit" -eq 1 ] && [ "$dry" -eq 0 ]; then
      n=$(find "$book" -name metrics.json 2>/dev/null | wc -l)
      commit_ledger "$book" "ledger: $fig-$mode${chunk:+ chunk $chunk}, $n finished jobs recorded" || status=1
    fi
  fi
done
[ "$report" -eq 1 ] || exit "$status"

# The pages of the figures run, from every campaign of this mode (fig3 reads fig2b's 64-dim runs).
shopt -s nullglob
sweeps=("$sweeps_root"/*-"$mode"/campaign)
if [ "$dry" -eq 1 ]; then
  for fig in "${figures[@]}"; do
    d=$(sweep_dir "$fig")
    [[ " ${sweeps[*]} " == *" $d "* ]] || sweeps+=("$d")
  done
fi
if [ ${#sweeps[@]} -eq 0 ]; then
  echo "reproduce_paper: no sweep directory $sweeps_root/*-$mode/campaign to report" >&2
  exit 1
fi
run vqbench-report "${sweeps[@]}" --figure "${figures[@]}" --out "$out" || status=1
exit "$status"
