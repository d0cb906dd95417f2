"""Benchmark (issue 25): every figure is a ratio of two timings taken in the same run.

    python scripts/bench.py --out results/bench.md                    # the page
    python scripts/bench.py --compare 35ef890 --out results/bench.md  # + this tree vs that revision
    python scripts/bench.py --quick --out /tmp/bench.md                # seconds: a smoke run
    python scripts/bench.py --page-only results/bench.json --out results/bench.md  # rewrite, no timing
    python scripts/bench.py --sections encode_profile --into results/bench.json --out results/bench.md

Sections (--sections, default all):
* train   NSVQ training throughput of RVQ, PVQ and AVQ W=16 through the CLI's path
          (build_quantizer + vqbench.training.fit, the optimizer's schema defaults) over a plain
          PyTorch reference of the same step (scripts/bench_reference.py), in this process;
* encode  AVQ beam search over faiss.ResidualQuantizer's beam search (max_beam_size) on the same
          codebooks and vectors, widths 16 and 64;
* vqvae   one VQ-VAE epoch (`vqbench experiment=vqvae_quick`, a small CIFAR-10 subset) at 12 and
          40 bits per quantizer: our encoder over the plain one in the same model and loop, each a
          CLI process (the epoch's seconds from its metrics.json, timings.train);
* profile where one training step spends its time (cProfile of a fit, grouped by phase);
* encode_profile  where one AVQ encode spends its time (the compiled beam search against the rest),
          and time per codeword scored, ours and faiss's.
With --compare REV every train/encode/vqvae case is also timed in this tree and in REV (a
temporary git worktree), each in a worker process whose PYTHONPATH points at its tree.

Both sides of a ratio are timed --repeats times, interleaved (order reversed every other repeat);
a ratio is computed per repeat and reported as median, min-max and interquartile range. The page
is generated from the measurements (also written as JSON next to it).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import json
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_reference  # noqa: E402  (scripts/bench_reference.py, torch only)

CIFAR = Path("/work/shared/data/cifar10/cifar10-jpg.tar.gz")
# (quantizer, beam width, goal: ours over the plain reference)
TRAIN_CASES = (("rvq", 1, 3.0), ("pvq", 1, 3.0), ("avq", 16, 50.0))
ENCODE_GOAL = 2.0  # AVQ encode over faiss RQ beam search at the same width


# ----------------------------------------------------------------------------- statistics
def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and quartiles (inclusive method: the quartiles of the values themselves)."""
    v = sorted(float(x) for x in values)
    if not v:
        raise ValueError("spread of no values")
    q1, q3 = (statistics.quantiles(v, n=4, method="inclusive")[i] for i in (0, 2)) if len(v) > 1 else (v[0], v[0])
    return {"n": len(v), "median": statistics.median(v), "min": v[0], "max": v[-1], "q1": q1, "q3": q3}


def paired_ratios(reference_s: list[float], ours_s: list[float], reference_work: float = 1.0,
                  ours_work: float = 1.0) -> list[float]:
    """Speed of ours over the reference, one per repeat: (ours_work / ours_s) / (reference_work / reference_s)."""
    if len(reference_s) != len(ours_s):
        raise ValueError("paired ratios need as many timings on each side")
    return [(ours_work / o) / (reference_work / r) for r, o in zip(reference_s, ours_s)]


def ratio_text(s: dict[str, float]) -> str:
    return (f"{s['median']:.2f}x (min-max {s['min']:.2f}-{s['max']:.2f}, IQR {s['q1']:.2f}-{s['q3']:.2f}, "
            f"n={s['n']})")


def interleaved(repeats: int, sides: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Seconds of each side per repeat; a side that returns a number returns its own seconds (a
    fit without set-up, a CLI run's timings.train), else its wall time counts. The order is reversed every other repeat."""
    out: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(repeats):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            t0 = time.perf_counter()
            own = sides[name]()
            wall = time.perf_counter() - t0
            out[name].append(float(own) if isinstance(own, (int, float)) else wall)
    return out


# ----------------------------------------------------------------------------- shared pieces
def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    """Gaussian vectors with a decaying spectrum (scales 2.0 .. 0.2), float32."""
    scale = np.linspace(2.0, 0.2, dim).astype(np.float32)
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32) * scale


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    with contextlib.suppress(ImportError):
        import faiss
        faiss.omp_set_num_threads(n)


def layered() -> bool:
    """Whether the vqbench imported has the package layers (vqbench/run/...). Asked of the files,
    not by trying the import: an editable install of another checkout could answer it."""
    import vqbench
    return (Path(vqbench.__file__).parent / "run" / "schema.py").exists()


def option_defaults(group: str, name: str) -> dict:
    if layered():
        from vqbench.run.schema import option_defaults as defaults
    else:  # revisions before the package layers
        from vqbench.schema import option_defaults as defaults
    return defaults(group, name)


def ours_train(name: str, beam: int, data: torch.Tensor, steps: int, args, profiler=None) -> float:
    """Seconds of one NSVQ fit through the CLI's path (build_quantizer + training.fit); `profiler`
    (cProfile) runs around the fit alone."""
    from vqbench.quantizers import build_quantizer
    from vqbench.training import fit

    ocfg = option_defaults("optimizer", "nsvq")
    ocfg.update({"steps" if "steps" in ocfg else "iterations": steps, "batch_size": args.batch})
    qcfg = {"name": name, "num_codebooks": args.M, "bits_per_codebook": args.bits, "beam_width": beam}
    torch.manual_seed(0)
    q = build_quantizer(qcfg, data.shape[1])
    with profiler if profiler is not None else contextlib.nullcontext():
        t0 = time.perf_counter()
        fit(q, data, ocfg, torch.device("cpu"), 0, progress=False)
        return time.perf_counter() - t0


def reference_train(name: str, beam: int, data: torch.Tensor, steps: int, args) -> float:
    d = data.shape[1] // args.M if name == "pvq" else data.shape[1]
    lr = option_defaults("optimizer", "nsvq")["lr"]
    t0 = time.perf_counter()
    bench_reference.plain_nsvq_train(name, (args.M, 1 << args.bits, d), data, steps, args.batch, lr, beam, 0)
    return time.perf_counter() - t0


def residual_codebooks(train: np.ndarray, M: int, bits: int, iters: int = 10) -> np.ndarray:
    """[M, K, D] codebooks of a quick residual k-means: realistic distances for the searches."""
    import faiss
    K = 1 << bits
    books = np.empty((M, K, train.shape[1]), np.float32)
    residual = train.copy()
    for m in range(M):
        km = faiss.Kmeans(train.shape[1], K, niter=iters, seed=m, max_points_per_centroid=1 << 30)
        km.train(residual)
        books[m] = km.centroids
        index = faiss.IndexFlatL2(train.shape[1])
        index.add(books[m])
        residual -= books[m][index.search(residual, 1)[1][:, 0]]
    return books


def our_avq(books: np.ndarray, beam: int):
    from vqbench.quantizers import AVQ
    M, K, D = books.shape
    q = AVQ(D, M, K.bit_length() - 1, beam_width=beam)
    q.codebooks.data = torch.from_numpy(books)
    return q


def faiss_rq(books: np.ndarray, beam: int):
    import faiss
    M, K, D = books.shape
    rq = faiss.ResidualQuantizer(D, M, K.bit_length() - 1)
    rq.max_beam_size = beam
    faiss.copy_array_to_vector(books.ravel(), rq.codebooks)
    rq.is_trained = True
    return rq


# ----------------------------------------------------------------------------- VQ-VAE through the CLI
def launch_cli(argv: list[str]) -> None:
    """`bench.py --launch-cli TREE plain|ours -- overrides...`: the vqbench CLI of the tree on
    PYTHONPATH with TREE/conf as its config (the editable install may point elsewhere);
    `plain` swaps in the plain encoders."""
    tree, mode, overrides = argv[0], argv[1], argv[3:]
    import vqbench
    spec = importlib.util.spec_from_file_location("vqbench.conf", f"{tree}/conf/__init__.py",
                                                  submodule_search_locations=[f"{tree}/conf"])
    conf = importlib.util.module_from_spec(spec)
    sys.modules["vqbench.conf"] = conf
    spec.loader.exec_module(conf)
    vqbench.conf = conf
    if mode == "plain":
        bench_reference.patch_plain_encoders()
    if layered():
        from vqbench.run.cli import main as cli_main
    else:
        from vqbench.cli import main as cli_main
    sys.argv = ["vqbench", *overrides]
    cli_main()


def vqvae_epoch(tree: Path, mode: str, quantizer: str, bits: int, args, workdir: Path, tag: str) -> float:
    """Seconds of one VQ-VAE training epoch (metrics.json timings.train) in a CLI process."""
    run_dir = workdir / tag
    overrides = ["experiment=vqvae_quick", "dataset=image_folder", f"dataset.root={args.cifar}",
                 f"dataset.max_train={args.vqvae_images}", "dataset.max_test=64", "experiment.epochs=1",
                 "experiment.eval_untrained=false", "experiment.grid_images=8", "experiment.eval_batch_size=64",
                 f"quantizer={quantizer}", f"quantizer.bits_per_codebook={bits // 4}", "quantizer.num_codebooks=4",
                 "progress=false", "seed=0", f"hydra.run.dir={run_dir}"]
    if args.cache_dir:
        overrides.append(f"dataset.cache_dir={args.cache_dir}")
    schema = next((p for p in (tree / "vqbench/run/schema.py", tree / "vqbench/schema.py") if p.exists()), None)
    if schema is not None and "threads:" in schema.read_text():  # revisions without the key use OMP_NUM_THREADS
        overrides.append(f"threads={args.vqvae_threads}")
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(args.vqvae_threads))
    res = subprocess.run([sys.executable, __file__, "--launch-cli", str(tree), mode, "--", *overrides],
                         env=env, cwd=workdir, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"VQ-VAE run {tag} failed:\n{res.stderr[-2000:]}")
    return float(json.loads((run_dir / "metrics.json").read_text())["timings"]["train"])


# ----------------------------------------------------------------------------- --compare workers
def worker() -> None:
    """`bench.py --worker`: JSON commands on stdin, seconds on stdout, in the tree on PYTHONPATH."""
    import vqbench
    print(json.dumps({"vqbench": vqbench.__file__}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        set_threads(cmd["threads"])
        ns = argparse.Namespace(**cmd["args"])
        if cmd["task"] == "train":
            data = torch.from_numpy(gaussian(cmd["n_train"], cmd["dim"], seed=7))
            out = ours_train(cmd["quantizer"], cmd["beam"], data, cmd["steps"], ns)
        else:  # encode
            books = np.load(cmd["books"])
            q = our_avq(books, cmd["beam"])
            x = torch.from_numpy(gaussian(cmd["n"], books.shape[2], seed=cmd["beam"]))
            q.encode(x[:64])
            t0 = time.perf_counter()
            q.encode(x)
            out = time.perf_counter() - t0
        print(json.dumps({"seconds": out}), flush=True)


class Worker:
    def __init__(self, tree: Path):
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=tree)
        where = json.loads(self.proc.stdout.readline())["vqbench"]
        if not str(Path(where).resolve()).startswith(str(tree.resolve())):
            raise SystemExit(f"--compare: the worker for {tree} imported vqbench from {where}")

    def __call__(self, **cmd) -> float:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker ended (exit {self.proc.wait()})")
        return json.loads(line)["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


# ----------------------------------------------------------------------------- sections
def row(measure: str, ratios: list[float], times: dict[str, list[float]], goal: float | None,
        note: str = "") -> dict:
    s = spread(ratios)
    return {"measure": measure, "ratio": s, "ratios": ratios, "seconds": times, "goal": goal,
            "met": None if goal is None else s["median"] >= goal, "note": note}


def train_section(args, data: torch.Tensor) -> list[dict]:
    rows = []
    for name, beam, goal in TRAIN_CASES:
        steps, ref_steps = (args.avq_steps, args.avq_ref_steps) if name == "avq" else (args.steps, args.ref_steps)
        for threads in args.threads:
            set_threads(threads)
            ours_train(name, beam, data, 2, args)  # warm-up: compiled code, allocator
            reference_train(name, beam, data, 1, args)
            times = interleaved(args.repeats, {
                "ours": lambda: ours_train(name, beam, data, steps, args),
                "reference": lambda: reference_train(name, beam, data, ref_steps, args)})
            ratios = paired_ratios(times["reference"], times["ours"], ref_steps, steps)
            rate = statistics.median(steps * args.batch / s for s in times["ours"])
            ref_rate = statistics.median(ref_steps * args.batch / s for s in times["reference"])
            label = f"{name.upper()}{f' W={beam}' if name == 'avq' else ''}"
            rows.append(row(f"train NSVQ {label}, {threads} thread{'s' * (threads > 1)}", ratios, times, goal,
                            f"ours {rate:,.0f} vs plain {ref_rate:,.0f} vectors/s ({steps} vs {ref_steps} steps)"))
    set_threads(1)
    return rows


def encode_section(args, books: np.ndarray) -> list[dict]:
    rows = []
    for beam, n in ((16, args.n16), (64, args.n64)):
        q, rq = our_avq(books, beam), faiss_rq(books, beam)
        x = gaussian(n, books.shape[2], seed=beam)
        xt = torch.from_numpy(x)
        for threads in args.threads:
            set_threads(threads)
            q.encode(xt[:64])  # tables and compiled code ready before timing
            ours_mse = float((xt - q.decode(q.encode(xt)).detach()).pow(2).sum(1).mean())
            theirs_mse = float(((x - rq.decode(rq.compute_codes(x))) ** 2).sum(1).mean())
            times = interleaved(args.repeats, {"ours": lambda: q.encode(xt), "reference": lambda: rq.compute_codes(x)})
            rows.append(row(f"encode AVQ W={beam} vs faiss RQ beam {beam}, {threads} thread{'s' * (threads > 1)}",
                            paired_ratios(times["reference"], times["ours"]), times, ENCODE_GOAL,
                            f"MSE {ours_mse:.2f} vs {theirs_mse:.2f}; {n} vectors"))
    set_threads(1)
    return rows


def vqvae_section(args, workdir: Path) -> list[dict]:
    rows = []
    vqvae_epoch(ROOT, "ours", "rvq", 12, args, workdir, "warmup")  # decodes the image cache once
    for quantizer in ("rvq", "pvq", "avq"):
        for bits in (12, 40):
            tag = f"{quantizer}{bits}"
            times = interleaved(args.vqvae_repeats, {
                "ours": lambda: vqvae_epoch(ROOT, "ours", quantizer, bits, args, workdir, f"{tag}-ours"),
                "reference": lambda: vqvae_epoch(ROOT, "plain", quantizer, bits, args, workdir, f"{tag}-plain")})
            rows.append(row(f"VQ-VAE epoch {quantizer.upper()} {bits} bits (4 x {bits // 4})",
                            paired_ratios(times["reference"], times["ours"]), times, None,
                            f"{args.vqvae_images} images, {args.vqvae_threads} thread(s); ours "
                            f"{statistics.median(times['ours']):.1f} s vs plain encoder "
                            f"{statistics.median(times['reference']):.1f} s"))
    return rows


def compare_section(args, rev: str, books: np.ndarray, workdir: Path) -> list[dict]:
    """This tree against REV, both in worker processes (and CLI processes for the VQ-VAE)."""
    tree = workdir / "rev"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    rows: list[dict] = []
    try:
        now, then = Worker(ROOT), Worker(tree)
        np.save(workdir / "books.npy", books)
        common = {"args": {"M": args.M, "bits": args.bits, "batch": args.batch}, "dim": args.dim,
                  "n_train": args.n_train}
        try:
            if "train" in args.sections:
                for name, beam, _ in TRAIN_CASES:
                    steps = args.avq_steps if name == "avq" else args.steps
                    for threads in args.threads:
                        cmd = {**common, "task": "train", "quantizer": name, "beam": beam, "threads": threads}
                        now(**cmd, steps=2), then(**cmd, steps=2)
                        times = interleaved(args.repeats, {"ours": lambda: now(**cmd, steps=steps),
                                                           "reference": lambda: then(**cmd, steps=steps)})
                        rows.append(row(f"train NSVQ {name.upper()}{f' W={beam}' if name == 'avq' else ''}, "
                                        f"{threads} thread{'s' * (threads > 1)}",
                                        paired_ratios(times["reference"], times["ours"]), times, None,
                                        f"{steps} steps of {args.batch}"))
            if "encode" in args.sections:
                for beam, n in ((16, args.n16), (64, args.n64)):
                    for threads in args.threads:
                        cmd = {**common, "task": "encode", "books": str(workdir / "books.npy"), "beam": beam, "n": n,
                               "threads": threads}
                        times = interleaved(args.repeats, {"ours": lambda: now(**cmd), "reference": lambda: then(**cmd)})
                        rows.append(row(f"encode AVQ W={beam}, {threads} thread{'s' * (threads > 1)}",
                                        paired_ratios(times["reference"], times["ours"]), times, None, f"{n} vectors"))
        finally:
            now.close()
            then.close()
        if "vqvae" in args.sections and args.cifar.exists():
            vqvae_epoch(tree, "ours", "rvq", 12, args, workdir, "rev-warmup")
            for quantizer in ("rvq", "pvq", "avq"):
                for bits in (12, 40):
                    tag = f"cmp-{quantizer}{bits}"
                    times = interleaved(args.vqvae_repeats, {
                        "ours": lambda: vqvae_epoch(ROOT, "ours", quantizer, bits, args, workdir, f"{tag}-now"),
                        "reference": lambda: vqvae_epoch(tree, "ours", quantizer, bits, args, workdir, f"{tag}-rev")})
                    rows.append(row(f"VQ-VAE epoch {quantizer.upper()} {bits} bits",
                                    paired_ratios(times["reference"], times["ours"]), times, None,
                                    f"{args.vqvae_images} images"))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    return rows


# Phases of a training step: (label, predicate on a cProfile key (file, line, function)).
PHASES = (
    ("encode (RVQ/PVQ: distances + argmin; AVQ: beam search)",
     lambda f, fn: fn == "encode" and "quantizers" in f),
    ("decode (gather / sum of codewords)", lambda f, fn: fn == "decode" and "quantizers" in f),
    ("loss", lambda f, fn: fn in ("nsvq_loss", "raw_loss") and "training" in f),
    ("backward", lambda f, fn: fn == "backward" and f.endswith(os.path.join("torch", "_tensor.py"))),
    ("Adam update", lambda f, fn: fn == "step" and f.endswith(os.path.join("optim", "adam.py"))),
    ("codeword replacement", lambda f, fn: fn in ("record", "maybe_replace") and "replacement" in f),
)


def profile_section(args, data: torch.Tensor) -> list[dict]:
    """cProfile of a fit per quantizer: seconds per step in each phase, the rest as 'other'."""
    out = []
    set_threads(args.threads[0])
    for name, beam, _ in TRAIN_CASES:
        steps = args.profile_steps
        ours_train(name, beam, data, 2, args)
        prof = cProfile.Profile()
        total = ours_train(name, beam, data, steps, args, profiler=prof)
        st = pstats.Stats(prof).stats  # {(file, line, fn): (cc, nc, tt, ct, callers)}
        phases = []
        for label, match in PHASES:
            ct = max((v[3] for (f, _, fn), v in st.items() if match(f, fn)), default=0.0)
            phases.append((label, ct))
        phases.append(("other (set-up, batch sampling, schedule, Python)", max(0.0, total - sum(c for _, c in phases))))
        top = sorted(((v[2], f"{Path(f).name}:{fn}") for (f, _, fn), v in st.items()), reverse=True)[:6]
        out.append({"quantizer": f"{name.upper()}{f' W={beam}' if name == 'avq' else ''}", "steps": steps,
                    "seconds": total, "threads": args.threads[0],
                    "phases": [{"phase": p, "ms_per_step": 1000 * c / steps, "share": c / total} for p, c in phases],
                    "top_self": [{"function": fn, "ms_per_step": 1000 * t / steps} for t, fn in top]})
    set_threads(1)
    return out


def encode_profile_section(args, books: np.ndarray) -> list[dict]:
    """Where one AVQ encode spends its time (1 thread): the compiled beam search, timed by a wrapper
    around it on the real path (cProfile cannot see inside numba), and the rest (root lookup table,
    chunking, conversions); faiss's RQ beside it, each as time per codeword scored."""
    from vqbench.quantizers import avq_numba
    set_threads(1)
    M, K, D = books.shape
    kernel, out = avq_numba.beam_search, []
    spent: list[float] = []

    def timed_kernel(*a, **k):
        t0 = time.perf_counter()
        codes = kernel(*a, **k)
        spent.append(time.perf_counter() - t0)
        return codes

    for beam, n in ((16, args.n16), (64, args.n64)):
        q, rq = our_avq(books, beam), faiss_rq(books, beam)
        x = gaussian(n, D, seed=beam)
        xt = torch.from_numpy(x)
        q.encode(xt[:64])
        kernel_s: list[float] = []

        def ours() -> float:
            spent.clear()
            t0 = time.perf_counter()
            q.encode(xt)
            total = time.perf_counter() - t0
            kernel_s.append(sum(spent))
            return total

        avq_numba.beam_search = timed_kernel
        try:
            times = interleaved(args.repeats, {"ours": ours, "faiss": lambda: rq.compute_codes(x)})
        finally:
            avq_numba.beam_search = kernel
        ours_cw, faiss_cw = codewords_scored(M, K, beam)
        out.append({"beam": beam, "vectors": n, "M": M, "K": K, "seconds": times, "kernel_seconds": kernel_s,
                    "codewords_scored": {"ours": ours_cw, "faiss": faiss_cw}})
    return out


def encode_profile_lines(profile: list[dict]) -> list[str]:
    lines = ["| W | vectors | ours: ms per 1000 vectors | of which the beam-search kernel | ours: ns per codeword "
             "scored | faiss RQ: ms per 1000 vectors | faiss: ns per codeword scored |", "|---|---|---|---|---|---|---|"]
    for p in profile:
        ours, theirs = statistics.median(p["seconds"]["ours"]), statistics.median(p["seconds"]["faiss"])
        n, cw = p["vectors"], p["codewords_scored"]
        lines.append(f"| {p['beam']} | {n:,} | {1000 * ours / n * 1000:.1f} | {kernel_share(p):.0%} | "
                     f"{1e9 * ours / (n * cw['ours']):.2f} | {1000 * theirs / n * 1000:.1f} | "
                     f"{1e9 * theirs / (n * cw['faiss']):.2f} |")
    return lines


# ----------------------------------------------------------------------------- page
def machine_lines() -> list[str]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    versions = [f"torch {torch.__version__}", f"numpy {np.__version__}", f"Python {platform.python_version()}"]
    with contextlib.suppress(ImportError):
        import faiss
        versions.insert(1, f"faiss {faiss.__version__}")
    return [f"- CPU: {model}, {os.cpu_count()} logical cores", "- " + ", ".join(versions)]


def ratio_table(rows: list[dict], with_goal: bool) -> list[str]:
    head = "| measure | ratio (median, min-max, IQR over repeats) |" + (" goal | met |" if with_goal else "") + " note |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**NO**")
        goal = f" >= {r['goal']:g}x | {met} |" if with_goal and r["goal"] is not None else (" | |" if with_goal else "")
        lines.append(f"| {r['measure']} | {ratio_text(r['ratio'])} |{goal} {r['note']} |")
    return lines


def codewords_scored(M: int, K: int, W: int) -> tuple[int, int]:
    """(ours, faiss): codewords whose distance one vector's encode computes.  Ours scores all M*K
    codewords at the root, then each of its (at most W) beams every codeword of its M - s unused
    codebooks at step s; faiss's RQ scores codebook s only, for each of its min(W, K^s) beams."""
    ours, beams = M * K, 1
    for step in range(1, M):
        beams = min(W, beams * (M - step + 1) * K)
        ours += beams * (M - step) * K
    theirs = K + sum(min(W, K ** step) * K for step in range(1, M))
    return ours, theirs


def bound_lines(rows: list[dict], profile: list[dict], settings: dict,
                encode_profile: list[dict] | None = None) -> list[str]:
    """For every training row short of its goal: the profile's largest phase; for every encode row:
    the search's size against faiss's, and the speed per codeword scored that it implies."""
    lines = []
    for r in rows:
        if r["met"] is not False or not r["measure"].startswith("train"):
            continue
        prof = next((p for p in profile if r["measure"].startswith(f"train NSVQ {p['quantizer']},")), None)
        if prof is None:
            lines.append(f"- {r['measure']}: {r['ratio']['median']:.2f}x, short of {r['goal']:g}x (no profile in this "
                         "run: add the profile section)")
            continue
        top = max(prof["phases"], key=lambda p: p["share"])
        lines.append(f"- {r['measure']}: {r['ratio']['median']:.2f}x, short of {r['goal']:g}x; bounded by "
                     f"{top['phase']}: {top['share']:.0%} of a step ({top['ms_per_step']:.2f} ms), see the profile")
    for r in rows:
        if r["met"] is False and r["measure"].startswith("encode"):
            width = int(re.search(r"W=(\d+)", r["measure"]).group(1))
            ours, theirs = codewords_scored(settings["enc_M"], 256, width)
            median = r["ratio"]["median"]
            lines.append(f"- {r['measure']}: {median:.2f}x, short of {r['goal']:g}x; bounded by the search's size: "
                         f"ours scores {ours:,} codewords per vector, faiss {theirs:,} ({ours / theirs:.2f}x as "
                         f"many: every unused codebook at every step, which is AVQ's search, not RQ's), so per "
                         f"codeword scored ours is {median * ours / theirs:.1f}x faster"
                         + kernel_share_text(encode_profile or [], width))
    return lines


def kernel_share(p: dict) -> float:
    """The compiled beam search's share of our encode in one encode-profile entry (median over repeats)."""
    return statistics.median(k / t for k, t in zip(p["kernel_seconds"], p["seconds"]["ours"]))


def kernel_share_text(profile: list[dict], width: int) -> str:
    p = next((p for p in profile if p["beam"] == width), None)
    if p is None:
        return " (no encode profile in this run)"
    return f"; the beam-search kernel is {kernel_share(p):.0%} of our encode (see the encode profile)"


def page(result: dict) -> str:
    a = result["settings"]
    lines = ["# vqbench speed: ratios within one run (issue 25)", "",
             f"`{result['command']}` — {result['seconds']:.0f} s, {result['started']}. Generated by "
             "scripts/bench.py from the measurements below (raw timings in the JSON beside this page).",
             *[f"Added later (`--into`): `{a['command']}`, {a['started']}, {a['seconds']:.0f} s, load "
               f"{a['load'][0]:.1f}-{a['load'][1]:.1f}." for a in result.get("added", [])], "",
             "Every figure is a ratio of two timings taken in this run, both sides interleaved "
             f"({a['repeats']} repeats; VQ-VAE {a['vqvae_repeats']}), a ratio per repeat, reported as median with "
             "min-max and interquartile range. Ratios > 1: ours is faster.", ""]
    if result["train"]:
        lines += ["## NSVQ training throughput: ours over a plain PyTorch step", "",
                  f"D = {a['dim']}, {a['M']} x {a['bits']} bits, batch {a['batch']}, Gaussian data "
                  f"({a['n_train']:,} vectors). Ours: `build_quantizer` + `vqbench.training.fit` with the nsvq "
                  "schema defaults (the CLI's path: Adam, cosine schedule, codeword replacement). Plain: "
                  "scripts/bench_reference.py (per-stage argmin over torch.cdist, noise substitution, Adam; AVQ: "
                  "a Python loop over beam-search steps, cdist for every beam). Throughputs (vectors/s) compared, "
                  "so the two sides may run different step counts.", "",
                  *ratio_table(result["train"], True), ""]
    if result["encode"]:
        lines += ["## AVQ encode: ours over faiss's RQ beam search", "",
                  f"The same codebooks (residual k-means, D = {a['dim']}, M = {a['enc_M']}, K = 256) and vectors; "
                  "faiss.ResidualQuantizer with max_beam_size = W searches codebooks in a fixed order, ours the "
                  "union of unused codebooks (more candidates per step).", "",
                  *ratio_table(result["encode"], True), ""]
    if result["vqvae"]:
        lines += ["## VQ-VAE epoch: our encoder over the plain one", "",
                  "`vqbench experiment=vqvae_quick dataset=image_folder` (one epoch, NSVQ), each run a CLI "
                  "process; the plain side swaps in scripts/bench_reference.py's encoders "
                  "(`patch_plain_encoders`): same model, same loop. Seconds of the epoch from metrics.json "
                  "(timings.train).", "", *ratio_table(result["vqvae"], False), ""]
    elif result.get("vqvae_skipped"):
        lines += ["## VQ-VAE epoch", "", f"Not measured: {result['vqvae_skipped']}.", ""]
    if result["compare"]:
        lines += [f"## This tree over {result['compare_rev']}", "",
                  f"Each case timed in this tree and in `{result['compare_rev']}` (a temporary git worktree), in "
                  "worker processes whose PYTHONPATH points at each tree (CLI processes for the VQ-VAE). "
                  "Ratio > 1: this tree is faster.", "", *ratio_table(result["compare"], False), ""]
    bounds = bound_lines(result["train"] + result["encode"], result["profile"], result["settings"],
                         result.get("encode_profile"))
    if bounds:
        lines += ["## Short of a goal", "", *bounds, ""]
    if result["profile"]:
        lines += ["## Profile: where a training step spends its time", "",
                  "cProfile of one fit per quantizer (our path, settings as above); each phase's cumulative time "
                  "per step. Profiling adds overhead; the shares are what matter.", ""]
        for p in result["profile"]:
            lines += [f"**{p['quantizer']}** ({p['steps']} steps, {p['threads']} thread(s), "
                      f"{1000 * p['seconds'] / p['steps']:.2f} ms per step under the profiler)", "",
                      "| phase | ms per step | share |", "|---|---|---|"]
            lines += [f"| {ph['phase']} | {ph['ms_per_step']:.3f} | {ph['share']:.0%} |" for ph in p["phases"]]
            lines += ["", "Largest self times: " + ", ".join(
                f"`{t['function']}` {t['ms_per_step']:.3f} ms" for t in p["top_self"]), ""]
    if result.get("encode_profile"):
        lines += ["## Profile: where an AVQ encode spends its time", "",
                  "1 thread, the codebooks and vectors of the encode rows. The compiled beam search is timed by a "
                  "wrapper around it on the real encode path (cProfile cannot see inside numba); the rest is the "
                  "root lookup table (one matrix product), chunking and conversions. Codewords scored per vector "
                  "as in the bounds above. Medians over repeats.", "", *encode_profile_lines(result["encode_profile"]), ""]
    lines += ["## Machine", "", *result.get("machine", machine_lines()),
              f"- load average (1 min) {result['load'][0]:.1f} at the start, {result['load'][1]:.1f} at the end; "
              "same-run ratios cancel most of a steady load, not its bursts (see the spread)"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main
def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write the page here (Markdown; raw timings to the same name .json)")
    ap.add_argument("--sections", default="train,encode,vqvae,profile,encode_profile",
                    help="comma-separated subset of train,encode,vqvae,profile,encode_profile")
    ap.add_argument("--compare", metavar="REV", help="also time this tree against git revision REV")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    ap.add_argument("--into", type=Path, metavar="JSON",
                    help="merge the sections run now into an earlier run's raw timings (that JSON and --out's page "
                         "are rewritten; the page names both commands)")
    ap.add_argument("--page-only", type=Path, metavar="JSON",
                    help="time nothing: rewrite the page (--out) from an earlier run's raw timings")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds): a smoke run, not a measurement")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for train and encode")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--M", type=int, default=4, help="codebooks in the training rows")
    ap.add_argument("--bits", type=int, default=8, help="bits per codebook in the training rows")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--n-train", type=int, default=100_000, help="training vectors")
    ap.add_argument("--steps", type=int, default=50, help="our NSVQ steps per timing (RVQ/PVQ)")
    ap.add_argument("--ref-steps", type=int, default=20, help="plain reference steps per timing (RVQ/PVQ)")
    ap.add_argument("--avq-steps", type=int, default=20, help="our NSVQ steps per timing (AVQ)")
    ap.add_argument("--avq-ref-steps", type=int, default=2, help="plain reference steps per timing (AVQ)")
    ap.add_argument("--enc-M", type=int, default=8, help="codebooks in the encode rows (K = 256)")
    ap.add_argument("--n16", type=int, default=4000, help="vectors encoded at W = 16")
    ap.add_argument("--n64", type=int, default=1500, help="vectors encoded at W = 64")
    ap.add_argument("--profile-steps", type=int, default=20)
    ap.add_argument("--cifar", type=Path, default=CIFAR, help="CIFAR-10 image folder or .tar.gz (VQ-VAE rows)")
    ap.add_argument("--cache-dir", help="decoded-image cache (dataset.cache_dir; default the CLI's)")
    ap.add_argument("--vqvae-images", type=int, default=2000, help="training images of the VQ-VAE epoch")
    ap.add_argument("--vqvae-repeats", type=int, default=3)
    ap.add_argument("--vqvae-threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.dim, args.M, args.bits, args.batch, args.n_train = 2, 16, 2, 4, 64, 2000
        args.steps, args.ref_steps, args.avq_steps, args.avq_ref_steps, args.profile_steps = 3, 2, 2, 1, 3
        args.enc_M, args.n16, args.n64, args.vqvae_images, args.vqvae_repeats = 2, 100, 50, 64, 1
    args.sections = [s for s in args.sections.split(",") if s]
    bad = set(args.sections) - {"train", "encode", "vqvae", "profile", "encode_profile"}
    if bad:
        ap.error(f"--sections: unknown {', '.join(sorted(bad))}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker()
        return 0
    if argv[:1] == ["--launch-cli"]:
        launch_cli(argv[1:])
        return 0
    args = parse(argv)
    if args.page_only:
        return rewrite_page(args.page_only, args.out)
    with contextlib.suppress(ImportError):
        from vqbench.common.malloc import keep_freed_memory
        keep_freed_memory()  # as the vqbench CLI does for every run
    start, load0 = time.perf_counter(), os.getloadavg()
    result: dict = {"command": "python scripts/bench.py " + " ".join(argv), "started": time.strftime("%Y-%m-%d %H:%M"),
                    "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "train": [], "encode": [], "vqvae": [], "compare": [], "profile": [], "encode_profile": [],
                    "compare_rev": args.compare}
    set_threads(1)
    data = torch.from_numpy(gaussian(args.n_train, args.dim, seed=7))
    books = residual_codebooks(gaussian(max(20 * 256, 2000 if args.quick else 20_000), args.dim, seed=0), args.enc_M, 8,
                               iters=2 if args.quick else 10)
    with tempfile.TemporaryDirectory(prefix="vqbench-bench-") as tmp:
        workdir = Path(tmp)
        if "train" in args.sections:
            result["train"] = train_section(args, data)
        if "encode" in args.sections:
            result["encode"] = encode_section(args, books)
        if "vqvae" in args.sections:
            if args.cifar.exists():
                result["vqvae"] = vqvae_section(args, workdir)
            else:
                result["vqvae_skipped"] = f"no CIFAR-10 images at {args.cifar} (--cifar)"
        if "profile" in args.sections:
            result["profile"] = profile_section(args, data)
        if "encode_profile" in args.sections:
            result["encode_profile"] = encode_profile_section(args, books)
        if args.compare:
            result["compare"] = compare_section(args, args.compare, books, workdir)
    result["seconds"] = time.perf_counter() - start
    result["load"] = [load0[0], os.getloadavg()[0]]
    result["machine"] = machine_lines()
    if args.into:
        result = merged_into(read_raw(args.into), result, args.sections)
    text = page(result)
    print(text)
    if args.out:
        from vqbench.common.atomic import write_text_atomic
        write_text_atomic(args.out, text)
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    missed = any(r["met"] is False for r in result["train"] + result["encode"])
    return 1 if args.strict and missed else 0


def read_raw(raw: Path) -> dict:
    """An earlier run's raw timings (bench.py's JSON), checked."""
    try:
        result = json.loads(raw.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"bench.py: {raw}: not a readable raw-timings file ({err})") from None
    missing = {"command", "settings", "train", "encode", "vqvae", "compare", "profile", "seconds", "load"} - set(result)
    if missing:
        raise SystemExit(f"bench.py: {raw}: no {', '.join(sorted(missing))} (not written by bench.py)")
    return result


def merged_into(base: dict, new: dict, sections: list[str]) -> dict:
    """``base`` with the sections of ``new`` in place of its own, and ``new``'s run named in 'added'.
    The machines must match: a ratio is of one machine, but a page mixing two would not say so."""
    if "machine" in base and base["machine"] != new["machine"]:
        raise SystemExit(f"bench.py: --into: that run was on another machine ({base['machine']}), this one is "
                         f"{new['machine']}; time every section again instead")
    out = {**base, "machine": base.get("machine") or [
        *new["machine"], "- (recorded by the `--into` run; the earlier run did not record its machine)"]}
    for section in sections:  # a section's name is its key in the raw timings
        out[section] = new[section]
    added = {k: new[k] for k in ("command", "started", "seconds", "load")}
    out["added"] = [*base.get("added", []), {**added, "sections": sections}]
    return out


def rewrite_page(raw: Path, out: Path | None) -> int:
    """The page of an earlier run from its JSON (a change of wording or analysis, no new timing)."""
    from vqbench.common.atomic import write_text_atomic
    result = read_raw(raw)
    if "machine" not in result:  # runs before the machine was recorded: say whose lines these are
        result["machine"] = [*machine_lines(), "- (machine lines of the page rewrite; the timing run did not record "
                             "its own)"]
    text = page(result)
    if out:
        write_text_atomic(out, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
