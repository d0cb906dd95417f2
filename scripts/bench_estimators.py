"""The estimator benchmark: every estimator x RVQ / PVQ / AVQ (+ FSQ) on the toy, ANN and VQ-VAE
tasks, peer layers of other packages on the toy and VQ-VAE tasks, and the page made from them.

    python scripts/bench_estimators.py run [--task toy|ann|vqvae ...] [--chunk I/N] [--dry-run]
    python scripts/bench_estimators.py page            # -> results/estimators.md, .csv, .png
    python scripts/bench_estimators.py estimate        # CPU-hours of the whole campaign

`run` sweeps each task's preset (conf/bench/estimators_<task>.yaml) into a fixed directory,
<sweeps>/estimators-<task>/campaign, with resume=true (run it again after a stop: finished jobs
are skipped), then the task's peer jobs (vqbench/bench/peer_runs.py; needs `pip install -e
'.[peers]'`, else they are left out with a note) into <sweeps>/estimators-peers-<task>/campaign.
Like scripts/reproduce_paper.sh it restores the campaign ledger (results/campaigns/estimators-*)
into the sweep directories first and saves the finished records back after each sweep, so a
campaign carries across sessions and machines (--commit commits the ledger after each chunk).
One thread per job (OMP_NUM_THREADS=1 etc.).

Data: --sift-root DIR / --sift-prefix NAME (or SIFT_ROOT, SIFT_PREFIX) for the ANN task, --cifar10
PATH (or CIFAR10: an image-folder tree or .tar.gz) for the VQ-VAE task; without them the ANN and
VQ-VAE presets read vqbench's data home (vqbench-data download sift1m; torchvision's CIFAR-10).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

# Wall seconds of one job, one thread, on the 2-core development machine with both cores busy with
# other jobs (load 4-8), 2026-12-03. Toy, timed at 24 bits (`vqbench +bench=estimators_toy
# bench_method=X quantizer.bits_per_codebook=6`, start-up excluded; a sweep pays it once): RVQ/PVQ
# nsvq/diveq 11-15 s of work, AVQ nsvq 58 s, AVQ kmeans 47 s, RVQ gumbel 50 s, AVQ gumbel ~150 s, FSQ
# 11 s; chunk 7/46 (3 jobs) 80 s; peer toy jobs 10-17 s. VQ-VAE: the README's vqvae_quick measurement
# (RVQ 24 bits, 203 s with the image cache) and Fig. 4's AVQ/RVQ epoch-time ratio; the peers' VQ-VAE
# loop was run only at 512 images x 1 epoch (10-25 s). ANN: fig5-full ledger timings (1M base, 2,000
# steps) scaled to 100k base and 500 steps; AVQ kmeans and every ANN gumbel run are guesses (not timed).
SECONDS = {
    "toy": {"rvq": 20, "pvq": 20, "avq": 60, "fsq": 15, "kmeans_avq": 50, "peer": 15},
    "ann": {"rvq": 45, "pvq": 40, "avq": 450, "kmeans_avq": 600},
    "vqvae": {"rvq": 210, "pvq": 210, "avq": 450, "fsq": 200, "peer": 210},
}


def job_seconds(task: str, method: str) -> float:
    """Estimated wall seconds of one job (SECONDS; Gumbel 2.5x its quantizer's time, as timed on the toy task)."""
    from vqbench.bench.tasks import method_parts

    table = SECONDS[task]
    quantizer, optimizer = method_parts(method)
    if optimizer == "kmeans" and quantizer == "avq" and "kmeans_avq" in table:
        return table["kmeans_avq"]
    base = table.get(quantizer, table["rvq"])
    return 2.5 * base if optimizer == "gumbel" else base


def estimate(tasks: list[str]) -> list[str]:
    """CPU-hours of the campaign (one core per job), per task and in all."""
    from vqbench.bench.peer_runs import peer_jobs
    from vqbench.bench.tasks import jobs

    lines, total = [], 0.0
    for task in tasks:
        ours = sum(job_seconds(task, j["bench_method"]) for j in jobs(task))
        peers = len(peer_jobs(task)) * SECONDS[task].get("peer", 0)
        total += ours + peers
        lines.append(f"{task}: {len(jobs(task))} jobs, {ours / 3600:.1f} CPU-h; "
                     f"{len(peer_jobs(task))} peer jobs, {peers / 3600:.1f} CPU-h")
    lines.append(f"all: {total / 3600:.1f} CPU-hours (one thread per job; two jobs side by side on 2 cores)")
    return lines


def data_args(task: str, args: argparse.Namespace) -> list[str]:
    if task == "ann" and args.sift_root:
        return [f"dataset.root={args.sift_root}", f"dataset.prefix={args.sift_prefix}"]
    if task == "vqvae" and args.cifar10:
        return ["dataset=image_folder", f"dataset.root={args.cifar10}"]
    return []


def say(cmd: list[str]) -> None:
    print(" ".join(shlex.quote(c) for c in cmd), flush=True)


def call(cmd: list[str], dry: bool, env: dict[str, str] | None = None) -> int:
    say(cmd)
    if dry:
        return 0
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}).returncode


def ledger(action: str, source: Path, target: Path, dry: bool) -> int:
    return call([sys.executable, "-m", "vqbench.run.ledger", action, str(source), str(target)], dry)


def commit_ledger(book: Path, message: str) -> int:
    repo = subprocess.run(["git", "-C", str(book), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if repo.returncode:
        print(f"bench_estimators: --commit: {book} is not in a git repository", file=sys.stderr)
        return 1
    top = repo.stdout.strip()
    subprocess.run(["git", "-C", top, "add", "--", str(book.resolve())], check=False)
    if subprocess.run(["git", "-C", top, "diff", "--cached", "--quiet", "--", str(book.resolve())]).returncode == 0:
        return 0
    return subprocess.run(["git", "-C", top, "commit", "-q", "-m", message, "--", str(book.resolve())]).returncode


def run_main(args: argparse.Namespace) -> int:
    from vqbench.bench.peers import available
    from vqbench.bench.tasks import TASKS

    status = 0
    for task in args.task:
        parts = [("ours", f"estimators-{task}")]
        if TASKS[task].peers and args.only != "ours":
            parts.append(("peers", f"estimators-peers-{task}"))
        if args.only == "peers":
            parts = [p for p in parts if p[0] == "peers"]
        for what, name in parts:
            sweep = Path(args.sweeps) / name / "campaign"
            book = Path(args.ledger) / name if args.ledger else None
            if what == "peers" and not (available("diveq") and available("vqp")):
                print(f"bench_estimators: {task} peers left out: install the extra (pip install -e '.[peers]')",
                      file=sys.stderr)
                continue
            if book is not None:
                status |= ledger("restore", book, sweep, args.dry_run)
            chunk = [f"--chunk={args.chunk}"] if args.chunk else []
            if what == "ours":
                cmd = [sys.executable, "-m", "vqbench", "-m", f"+bench=estimators_{task}", "progress=false", "resume=true",
                       f"hydra.sweep.dir={sweep}", *([f"hydra.sweeper.chunk={args.chunk}"] if args.chunk else []),
                       *data_args(task, args), *args.overrides]
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "peers", "--task", task, "--out", str(sweep), *chunk,
                       "--", *data_args(task, args), *args.overrides]
            rc = call(cmd, args.dry_run, THREADS)
            if rc == 2 and what == "ours":
                return 2  # refused before any job ran: the other tasks would meet the same
            status |= rc != 0
            if book is not None:
                status |= ledger("save", sweep, book, args.dry_run)
                if args.commit and not args.dry_run:
                    n = len(list(book.glob("*/metrics.json")))
                    status |= commit_ledger(book, f"ledger: {name}{' chunk ' + args.chunk if args.chunk else ''}, "
                                                  f"{n} finished jobs recorded") != 0
    if args.dry_run:
        print("\n".join(estimate(args.task)))
    return int(bool(status))


def peers_main(args: argparse.Namespace) -> int:
    from vqbench.bench.peer_runs import run_peer_jobs
    from vqbench.bench.tasks import TASKS
    from vqbench.run.chunk_sweeper import parse_chunk

    chunk = parse_chunk(args.chunk) if args.chunk else None
    counts = run_peer_jobs(TASKS[args.task], Path(args.out), chunk, args.overrides, resume=not args.no_resume)
    print(f"peers {args.task}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 1 if counts["failed"] else 0


def page_main(args: argparse.Namespace) -> int:
    from vqbench.bench.page import write_page

    dirs = [Path(d) for d in args.dirs] or [d for d in sorted(Path(args.ledger).glob("estimators-*")) if d.is_dir()]
    dirs += [d for d in sorted(Path(args.sweeps).glob("estimators-*/campaign")) if d.is_dir() and not args.dirs]
    table = write_page(dirs, Path(args.out))
    empty, total, seeds_missing, seeds_total = table.missing()
    print(f"{args.out}: {total - empty} of {total} cells filled, {seeds_missing} of {seeds_total} seed runs missing "
          f"(from {len(dirs)} directories)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tasks = ["toy", "ann", "vqvae"]

    run = sub.add_parser("run", help="sweep the presets and the peer jobs (resumable, ledger)")
    run.add_argument("--task", nargs="+", choices=tasks, default=tasks)
    run.add_argument("--only", choices=["ours", "peers", "both"], default="both")
    run.add_argument("--chunk", help="I/N: the I-th of N interleaved slices of each job list")
    run.add_argument("--sweeps", default="multirun/bench", help="root of the sweep directories")
    run.add_argument("--ledger", default="results/campaigns", help="campaign ledger root ('' for none)")
    run.add_argument("--commit", action="store_true", help="git-commit the ledger after each sweep")
    run.add_argument("--sift-root", default=os.environ.get("SIFT_ROOT"))
    run.add_argument("--sift-prefix", default=os.environ.get("SIFT_PREFIX", "siftlike"))
    run.add_argument("--cifar10", default=os.environ.get("CIFAR10"))
    run.add_argument("--dry-run", action="store_true", help="print the commands and the estimate, run nothing")
    run.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job (after --)")

    peers = sub.add_parser("peers", help="run one task's peer jobs into a directory")
    peers.add_argument("--task", choices=["toy", "vqvae"], required=True)
    peers.add_argument("--out", required=True)
    peers.add_argument("--chunk")
    peers.add_argument("--no-resume", action="store_true")
    peers.add_argument("overrides", nargs="*")

    page = sub.add_parser("page", help="write the page from run directories")
    page.add_argument("dirs", nargs="*", help="run directories (default: the ledger's and the sweeps' estimators-*)")
    page.add_argument("--out", default="results/estimators.md")
    page.add_argument("--ledger", default="results/campaigns")
    page.add_argument("--sweeps", default="multirun/bench")

    est = sub.add_parser("estimate", help="CPU-hours of the campaign")
    est.add_argument("--task", nargs="+", choices=tasks, default=tasks)

    args = parser.parse_args(argv)
    if args.command == "run":
        return run_main(args)
    if args.command == "peers":
        return peers_main(args)
    if args.command == "page":
        return page_main(args)
    print("\n".join(estimate(args.task)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
