#!/usr/bin/env bash
# A paper campaign on one GPU: the figure's sweep with many jobs at once on the device
# (joblib launcher, device=cuda), writing the same ledger as scripts/reproduce_paper.sh.
# `bash scripts/gpu_campaign.sh --help` for the arguments.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Usage: bash scripts/gpu_campaign.sh [--jobs N] [--figure FIG] [--ledger DIR] [--sweeps DIR] [--smoke] DATA_DIR

Runs FIGURE's full campaign (default fig4: 24 points x 3 seeds) with N jobs at once on one GPU
(default 12; the VQ-VAE's network is small, so the GPU runs many side by side), resuming from and
saving into the ledger (default results/campaigns), then the figure's pages into --sweeps/pages.

DATA_DIR holds the data the figure reads: fig4 cifar10-jpg.tar.gz (or any CIFAR-10 image-folder
archive) and, optional, cifar10-genuine-5k.npz; fig5/fig6 a TEXMEX directory (SIFT_PREFIX, default
sift). On the device machine, copy them into a git-ignored folder of the checkout and carry it.

  --jobs N       jobs at once (default 12)
  --figure FIG   fig4 (default), fig5 or fig6
  --ledger DIR   the campaign ledger (default results/campaigns)
  --sweeps DIR   where sweeps and pages go (default multirun/gpu)
  --smoke        a tiny run on the CPU (the first of 24 slices, 128 training images, 1 epoch, 2 jobs):
                 checks the script, the launcher and the ledger without a GPU
  -h, --help     this text

Exit status: that of scripts/reproduce_paper.sh (0: every job finished), 2 for a bad argument.
EOF
}

die() { echo "gpu_campaign.sh: error: $*; see --help" >&2; exit 2; }

jobs=12 figure=fig4 ledger=results/campaigns sweeps=multirun/gpu smoke=0 data=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --jobs) [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive integer"; jobs=$2; shift ;;
    --figure) [ $# -ge 2 ] || die "--figure needs fig4, fig5 or fig6"; figure=$2; shift ;;
    --ledger) [ $# -ge 2 ] && [ -n "$2" ] || die "--ledger needs a directory"; ledger=$2; shift ;;
    --sweeps) [ $# -ge 2 ] && [ -n "$2" ] || die "--sweeps needs a directory"; sweeps=$2; shift ;;
    --smoke) smoke=1 ;;
    -*) die "unknown flag '$1'" ;;
    *) [ -z "$data" ] || die "one DATA_DIR, got '$data' and '$1'"; data=$1 ;;
  esac
  shift
done
case "$figure" in fig4|fig5|fig6) ;; *) die "--figure must be fig4, fig5 or fig6, got '$figure'" ;; esac
[ -n "$data" ] || die "DATA_DIR is missing"
[ -d "$data" ] || die "DATA_DIR $data is not a directory"
data=$(realpath "$data")

python -c "import vqbench, hydra_plugins.hydra_joblib_launcher" 2>/dev/null || pip install -q -e '.[cluster]' \
  || die "cannot install vqbench with its joblib launcher (pip install -e '.[cluster]')"

if [ "$figure" = fig4 ]; then
  archive=$(ls "$data"/*.tar.gz "$data"/*.tgz 2>/dev/null | head -1)
  [ -n "$archive" ] || die "no CIFAR-10 archive (*.tar.gz) in $data"
  export CIFAR10=$archive
  [ -f "$data/cifar10-genuine-5k.npz" ] && export GENUINE=$data/cifar10-genuine-5k.npz
else
  export SIFT_ROOT=$data SIFT_PREFIX=${SIFT_PREFIX:-sift}
fi

device=cuda chunk=()
if [ "$smoke" -eq 1 ]; then
  device=cpu jobs=2 chunk=(--chunk 1/24)
  export OVERRIDES="dataset.max_train=128 dataset.max_test=32 experiment.epochs=1 optimizer.replacement.num_batches=1"
  [ "$figure" = fig4 ] || OVERRIDES="dataset.max_base=2000 dataset.max_queries=50 optimizer.steps=10 experiment.search_k=100"
else
  python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || die "no CUDA device (torch.cuda.is_available() is False); --smoke runs a tiny check on the CPU"
fi
export SWEEPS=$sweeps/sweeps
export LAUNCHER="hydra/launcher=joblib hydra.launcher.n_jobs=$jobs device=$device"
start=$(date +%s)
bash scripts/reproduce_paper.sh "${chunk[@]}" --ledger "$ledger" --out "$sweeps/pages" "$figure"
rc=$?
echo "gpu_campaign: $figure on $device, $jobs jobs at once: status $rc in $(( $(date +%s) - start )) s" >&2
exit "$rc"
