"""Benchmark: AVQ beam-search encoding throughput (vectors/s), next to faiss's residual
quantizer beam search (RQ: same codebooks, M, K and beam width) as a reference engine.

AVQ searches the union of the codebooks (any unused codebook at every step, so about
(M+1)/2 times more candidates per step than RQ's fixed stage order).

    python scripts/bench_avq_encode.py --dim 128 --M 8 --bits 8 --beam 16 --n 20000
    python scripts/bench_avq_encode.py --beam 64 --n 3000 --threads 1 --no-faiss --engine torch --plain-topk

Codebooks come from a quick residual k-means on Gaussian data with a decaying spectrum so
that distances are realistic; the timing covers encode() only (tables included).
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np
import torch

from vqbench.metrics.complexity import encode_ops
from vqbench.quantizers import AVQ
from vqbench.quantizers import avq as avq_module
from vqbench.quantizers.kmeans import lloyd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--M", type=int, default=8)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--beam", type=int, default=16)
    ap.add_argument("--n", type=int, default=20000, help="vectors to encode")
    ap.add_argument("--threads", type=int, default=0, help="torch/faiss threads (0: library default)")
    ap.add_argument("--no-faiss", action="store_true")
    ap.add_argument("--engine", default="auto", choices=["auto", "torch", "numba"],
                    help="AVQ beam search: auto (numba on CPU), torch (the reference), numba")
    ap.add_argument("--plain-topk", action="store_true",
                    help="also time the beam search with a plain torch.topk instead of the set-minimum "
                         "k-smallest (avq.smallest), and check both give the same codes (torch engine only)")
    args = ap.parse_args()
    if args.plain_topk and args.engine != "torch":
        ap.error("--plain-topk times the torch engine's top-k: add --engine torch")
    if args.threads:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    scale = np.linspace(2.0, 0.2, args.dim).astype(np.float32)
    train = rng.standard_normal((20000, args.dim)).astype(np.float32) * scale
    x = rng.standard_normal((args.n, args.dim)).astype(np.float32) * scale

    K = 1 << args.bits
    codebooks = np.empty((args.M, K, args.dim), np.float32)
    residual = train.copy()
    for m in range(args.M):
        codebooks[m] = lloyd(residual, K, 10, seed=m)
        index = faiss.IndexFlatL2(args.dim)
        index.add(codebooks[m])
        residual -= codebooks[m][index.search(residual, 1)[1][:, 0]]

    q = AVQ(args.dim, args.M, args.bits, beam_width=args.beam, engine=args.engine)
    q.codebooks.data = torch.from_numpy(codebooks)
    xt = torch.from_numpy(x)
    q.encode(xt[:256])  # warm-up
    t0 = time.perf_counter()
    codes = q.encode(xt)
    avq_s = time.perf_counter() - t0
    avq_mse = (xt - q.decode(codes).detach()).pow(2).sum(1).mean().item()
    out = {
        "dim": args.dim, "M": args.M, "K": K, "beam": args.beam, "n": args.n, "engine": args.engine,
        "torch_threads": torch.get_num_threads(),
        "avq_vectors_per_s": args.n / avq_s, "avq_mse": avq_mse, "avq_encode_ops": encode_ops(q),
    }
    if args.plain_topk:
        fast = avq_module.smallest
        avq_module.smallest = lambda v, k: v.topk(k, dim=1, largest=False, sorted=True)
        try:
            t0 = time.perf_counter()
            plain_codes = q.encode(xt)
            out["avq_plain_topk_vectors_per_s"] = args.n / (time.perf_counter() - t0)
        finally:
            avq_module.smallest = fast
        out["avq_plain_topk_same_codes"] = bool(torch.equal(plain_codes, codes))
    if not args.no_faiss:
        # faiss's RQ beam search (codebook m at stage m) over the very same codebooks.
        rq = faiss.ResidualQuantizer(args.dim, args.M, args.bits)
        rq.max_beam_size = args.beam
        faiss.copy_array_to_vector(codebooks.ravel(), rq.codebooks)
        rq.is_trained = True
        t0 = time.perf_counter()
        rq_codes = rq.compute_codes(x)
        rq_s = time.perf_counter() - t0
        rq_mse = float(((x - rq.decode(rq_codes)) ** 2).sum(1).mean())
        out.update({"faiss_rq_vectors_per_s": args.n / rq_s, "faiss_rq_mse": rq_mse})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
