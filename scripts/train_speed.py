"""Gradient-training throughput (vectors/s) of this checkout, optionally beside another revision.

Times ``vqbench.training.fit`` (NSVQ or STE, Adam, replacement on) on Gaussian data with a
decaying spectrum. With ``--ref REV`` the same measurement runs on the code of git revision
REV (exported to a temporary directory), alternating with this checkout's, so the ratio is
measured in one run on a shared machine.

    OMP_NUM_THREADS=2 python scripts/train_speed.py --quantizers rvq pvq --ref 77bb0a0
    python scripts/train_speed.py --quantizers avq --beam 16 --iterations 40 --threads 2

Each row: median throughput over --repeats runs of --iterations steps at --batch vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(args: argparse.Namespace, quantizer: str) -> float:
    """Vectors/s of one training run with the vqbench importable from sys.path."""
    import time

    import numpy as np
    import torch

    from vqbench.quantizers import build_quantizer
    from vqbench.training import fit

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    scale = np.linspace(2.0, 0.2, args.dim).astype(np.float32)
    data = torch.from_numpy(rng.standard_normal((args.train, args.dim)).astype(np.float32) * scale)
    qcfg = {"name": quantizer, "num_codebooks": args.M, "bits_per_codebook": args.bits, "beam_width": args.beam}
    ocfg = {"name": args.optimizer, "steps": args.iterations, "batch_size": args.batch, "lr": 0.05,
            "lr_schedule": "cosine", "init": "random", "beta": 0.25,
            "replacement": {"enabled": True, "num_batches": 100, "discard_threshold": 0.01, "noise": 0.01}}
    torch.manual_seed(0)
    q = build_quantizer(qcfg, args.dim)
    t0 = time.perf_counter()
    fit(q, data, ocfg, torch.device("cpu"), seed=0, progress=False)
    return args.iterations * args.batch / (time.perf_counter() - t0)


def child_main(args: argparse.Namespace) -> None:
    print(json.dumps({q: measure(args, q) for q in args.quantizers}))


def run_child(args: argparse.Namespace, pythonpath: Path) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", "--quantizers", *args.quantizers]
    for key in ("dim", "M", "bits", "beam", "batch", "iterations", "threads", "train", "optimizer"):
        argv += [f"--{key}", str(getattr(args, key))]
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, cwd=pythonpath).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quantizers", nargs="+", default=["rvq", "pvq"])
    ap.add_argument("--optimizer", default="nsvq", choices=["nsvq", "ste"])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--M", type=int, default=4)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--beam", type=int, default=16, help="AVQ beam width")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", type=int, default=100_000, help="training vectors")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ref", help="git revision to time beside this checkout")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args)
        return

    trees = {"this": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if args.ref:
            ref_dir = Path(tmp) / "ref"
            ref_dir.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref, "vqbench"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(ref_dir)], input=archive, check=True)
            trees = {f"ref {args.ref}": ref_dir, "this": ROOT}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.repeats):  # alternate so load changes hit both alike
            for name, tree in trees.items():
                runs[name].append(run_child(args, tree))

    print(f"{args.optimizer} training, batch {args.batch}, D = {args.dim}, {args.M} x {args.bits} bits, "
          f"{args.threads} threads, {args.iterations} steps, median of {args.repeats}")
    header = "| quantizer | " + " | ".join(f"{n} (vectors/s)" for n in trees) + (" | ratio |" if args.ref else " |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for q in args.quantizers:
        med = [statistics.median(r[q] for r in runs[name]) for name in trees]
        row = f"| {q} | " + " | ".join(f"{v:,.0f}" for v in med)
        print(row + (f" | {med[-1] / med[0]:.2f} |" if args.ref else " |"))


if __name__ == "__main__":
    main()
