"""ANN search speed: decoded flat search (vqbench.ann.search.knn) vs the faiss lookup-table index
(vqbench.ann.faiss_index) on the same codebooks and base codes, with the recall of both.

    OMP_NUM_THREADS=2 python scripts/search_speed.py --root ../shared/data/siftlike1m --prefix siftlike \\
        --nb 100000 --nq 2000 --quantizers pvq rvq

Codebooks come from a short k-means fit (the search cost does not depend on how they were
trained); timings cover the search only (index build reported apart).
"""
from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
import torch

from vqbench.ann.faiss_index import build_index, search
from vqbench.ann.search import knn, recall_at
from vqbench.data.sift import load_dataset
from vqbench.quantizers import build_quantizer
from vqbench.run.schema import option_defaults
from vqbench.training import fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--prefix", default="sift")
    ap.add_argument("--nb", type=int, default=100_000)
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--quantizers", nargs="+", default=["pvq", "rvq"])
    ap.add_argument("--M", type=int, default=8)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=131072)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    ds = load_dataset(option_defaults("dataset", "sift1m", root=args.root, prefix=args.prefix, max_base=args.nb,
                                      max_queries=args.nq, max_train=20000), seed=0)
    xt, xq, gt = ds.get_train(), ds.get_queries(), ds.get_groundtruth()
    xb = np.concatenate(list(ds.database_iterator(args.chunk)))
    print(f"base {len(xb)} x {xb.shape[1]}, {len(xq)} queries, k = {args.k}, {args.threads} threads, "
          f"{args.M} x {args.bits} bits")
    print("| quantizer | flat search s | faiss index build s | faiss search s | speed-up | recall@1 flat | recall@1 faiss | recall@100 flat | recall@100 faiss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.quantizers:
        q = build_quantizer({"name": name, "num_codebooks": args.M, "bits_per_codebook": args.bits,
                             "beam_width": 4}, xb.shape[1])
        fit(q, torch.from_numpy(xt), option_defaults("optimizer", "kmeans", lloyd_iterations=5, alternations=1),
            torch.device("cpu"), 0, progress=False)
        codes = q.encode(torch.from_numpy(xb)).numpy()

        def decoded():
            for j in range(0, len(codes), args.chunk):
                yield q.decode(torch.from_numpy(codes[j:j + args.chunk])).detach().numpy()

        t0 = time.perf_counter()
        _, flat_ids = knn(xq, decoded(), args.k)
        t_flat = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = build_index(q, codes)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, faiss_ids = search(index, xq, args.k)
        t_faiss = time.perf_counter() - t0
        rf, ri = recall_at(flat_ids, gt, (1, 100)), recall_at(faiss_ids, gt, (1, 100))
        print(f"| {name} | {t_flat:.2f} | {t_build:.2f} | {t_faiss:.2f} | {t_flat / t_faiss:.2f} | "
              f"{rf[1]:.4f} | {ri[1]:.4f} | {rf[100]:.4f} | {ri[100]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
