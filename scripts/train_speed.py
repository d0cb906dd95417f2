"""Gradient-training throughput (vectors/s) of this checkout, optionally beside another revision.

Times ``vqbench.training.fit`` (NSVQ or STE, Adam, replacement on) on Gaussian data with a
decaying spectrum, after a short warm-up fit (one-time costs such as loading compiled kernels
stay out). With ``--ref REV`` the package of git revision REV is exported to a temporary
directory and imported as ``vqbench_ref`` into the same process; the two are timed in
alternation, so the ratio is measured in one run on a shared machine.

    python scripts/train_speed.py --quantizers rvq pvq --threads 2 --ref 77bb0a0
    python scripts/train_speed.py --quantizers rvq pvq --threads 1 --clock cpu --ref 77bb0a0

Each row: median throughput over --repeats runs of --iterations steps at --batch vectors.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def load_revision(rev: str, tmp: Path):
    """(build_quantizer, fit) of git revision ``rev``, imported as the package ``vqbench_ref``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "vqbench"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "vqbench").rename(tmp / "vqbench_ref")
    sys.path.insert(0, str(tmp))
    quantizers = importlib.import_module("vqbench_ref.quantizers")
    training = importlib.import_module("vqbench_ref.training")
    for module in (quantizers, training, importlib.import_module("vqbench_ref.training.gradient")):
        if not str(module.__file__).startswith(str(tmp)):
            raise SystemExit(f"--ref {rev}: {module.__name__} was not imported from the exported revision")
    return quantizers.build_quantizer, training.fit


def measure(args, build_quantizer, fit, quantizer: str, data: torch.Tensor) -> float:
    qcfg = {"name": quantizer, "num_codebooks": args.M, "bits_per_codebook": args.bits, "beam_width": args.beam}
    # "steps" is today's key, "iterations" the one --ref revisions before the config schema read
    ocfg = {"name": args.optimizer, "steps": args.iterations, "iterations": args.iterations, "batch_size": args.batch, "lr": 0.05,
            "lr_schedule": "cosine", "init": "random", "beta": 0.25,
            "replacement": {"enabled": True, "num_batches": 100, "discard_threshold": 0.01, "noise": 0.01}}
    torch.manual_seed(0)
    q = build_quantizer(qcfg, args.dim)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    t0 = clock()
    fit(q, data, ocfg, torch.device("cpu"), seed=0, progress=False)
    return args.iterations * args.batch / (clock() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quantizers", nargs="+", default=["rvq", "pvq"])
    ap.add_argument("--optimizer", default="nsvq", choices=["nsvq", "ste"])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--M", type=int, default=4)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--beam", type=int, default=16, help="AVQ beam width")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", type=int, default=100_000, help="training vectors")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: vectors per CPU-second of the process (steadier on a loaded machine at 1 thread)")
    ap.add_argument("--ref", help="git revision to time beside this checkout")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from vqbench.quantizers import build_quantizer
    from vqbench.training import fit

    rng = np.random.default_rng(0)
    scale = np.linspace(2.0, 0.2, args.dim).astype(np.float32)
    data = torch.from_numpy(rng.standard_normal((args.train, args.dim)).astype(np.float32) * scale)
    with tempfile.TemporaryDirectory() as tmp:
        impls = {"this": (build_quantizer, fit)}
        if args.ref:
            impls = {f"ref {args.ref}": load_revision(args.ref, Path(tmp)), "this": (build_quantizer, fit)}
        warm = argparse.Namespace(**{**vars(args), "iterations": 5})
        for q in args.quantizers:
            for impl in impls.values():
                measure(warm, *impl, q, data)
        runs = {(name, q): [] for name in impls for q in args.quantizers}
        for _ in range(args.repeats):  # alternate so load changes hit both alike
            for q in args.quantizers:
                for name, impl in impls.items():
                    runs[name, q].append(measure(args, *impl, q, data))

    print(f"{args.optimizer} training, batch {args.batch}, D = {args.dim}, {args.M} x {args.bits} bits, "
          f"{args.threads} threads, {args.iterations} steps, {args.clock} clock, median of {args.repeats}")
    header = "| quantizer | " + " | ".join(f"{n} (vectors/s)" for n in impls) + (" | ratio |" if args.ref else " |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for q in args.quantizers:
        med = [statistics.median(runs[name, q]) for name in impls]
        ratios = [b / a for a, b in zip(*(runs[name, q] for name in impls))] if args.ref else []
        row = f"| {q} | " + " | ".join(f"{v:,.0f}" for v in med)
        print(row + (f" | {statistics.median(ratios):.2f} |" if args.ref else " |"))


if __name__ == "__main__":
    main()
