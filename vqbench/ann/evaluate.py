"""Evaluate a codec on an ANN dataset: encode the base, measure its reconstruction error,
search every query and compute recall@T.

Search is exact ||q - x_hat||^2 over the decoded base, decoded chunk by chunk into a faiss
flat search (search.knn), or on a faiss index built from the codes (faiss_index.IndexSearch).
Our quantizers (``torch_codec``) and faiss's baselines (baselines.FaissCodec) go through the
same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
import torch

from ..common.process import timed
from ..common.progress import progress as progress_bar
from ..metrics.vectors import code_statistics
from ..quantizers import Quantizer
from .faiss_index import IndexSearch
from .search import knn, recall_at, recall_ts

Encoder = Callable[[np.ndarray], np.ndarray]   # float32 (n, d) -> codes (n, M)
Decoder = Callable[[np.ndarray], np.ndarray]   # codes (n, M) -> float32 (n, d)


class Base(Protocol):
    """What ``evaluate`` reads of an ANN dataset (vqbench.data.ann_dataset.ANNDataset)."""

    @property
    def nb(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def database_iterator(self, bs: int) -> Iterator[np.ndarray]: ...
    def get_queries(self) -> np.ndarray: ...
    def get_groundtruth(self) -> np.ndarray: ...


def evaluate(ds: Base, encode: Encoder, decode: Decoder, num_codebooks: int,
             codebook_size: int, *, search_k: int, chunk_size: int,
             progress: bool, label: str = "",
             index_search: IndexSearch | None = None,
             search_with_index: bool = True) -> tuple[dict[str, float], dict[str, float]]:
    """Encode the base, measure reconstruction error, search all queries, compute recall.

    Search is exact ||q - x_hat||^2 over the decoded base in chunks. ``index_search`` builds
    a faiss index from the codes (timed as ``index``) and, with ``search_with_index``, the
    search runs on it instead (same distances, faiss's lookup tables).
    Returns (metrics, timings). Memory: the codes (nb x M, uint8/uint16) plus one chunk.
    """
    timings: dict[str, float] = {}

    def bar(desc):
        return progress_bar(total=ds.nb, desc=f"{label}{desc}", enabled=progress, unit="vec", unit_scale=True)

    with timed(timings, "encode"), bar("encode") as pb:
        codes = encode_base(ds, encode, num_codebooks, codebook_size, chunk_size, pb)
    with timed(timings, "reconstruct"), bar("reconstruct") as pb:
        err_sum = reconstruction_error(ds, decode, codes, chunk_size, pb)
    queries = ds.get_queries()
    gt = ds.get_groundtruth()
    k = min(search_k, ds.nb)
    if index_search is not None:
        with timed(timings, "index"):
            index_search.build(codes)
    if index_search is not None and search_with_index:
        with timed(timings, "search"):
            ids = index_search.search(queries, k)
    else:
        with timed(timings, "search"), bar("search") as pb:
            _, ids = knn(queries, decoded_chunks(decode, codes, chunk_size), k, progress=pb)

    mse = err_sum / ds.nb
    metrics: dict[str, float] = {"bits": float(num_codebooks * np.log2(codebook_size)),
                                 "mse": mse, "mse_per_dim": mse / ds.dim}
    for t, r in recall_at(ids, gt, recall_ts(k)).items():
        metrics[f"recall@{t}"] = r
    metrics.update(code_statistics(torch.from_numpy(codes.astype(np.int64)), codebook_size))
    metrics["encode_vectors_per_s"] = ds.nb / max(timings["encode"], 1e-9)
    metrics["search_queries_per_s"] = len(queries) / max(timings["search"], 1e-9)
    return metrics, timings


def encode_base(ds: Base, encode: Encoder, num_codebooks: int, codebook_size: int, chunk_size: int,
                pb) -> np.ndarray:
    """Codes (nb, M) of the base, encoded chunk by chunk; the smallest unsigned dtype that holds
    codebook_size codes (uint8, uint16, else int64). ``pb`` counts the vectors done."""
    code_dtype = np.uint8 if codebook_size <= 256 else np.uint16 if codebook_size <= 65536 else np.int64
    codes = np.empty((ds.nb, num_codebooks), dtype=code_dtype)
    i0 = 0
    for x in ds.database_iterator(chunk_size):
        codes[i0:i0 + len(x)] = encode(x)
        i0 += len(x)
        pb.update(len(x))
    return codes


def reconstruction_error(ds: Base, decode: Decoder, codes: np.ndarray, chunk_size: int, pb) -> float:
    """Sum over the base of ||x - x_hat||^2 (float32 squares, float64 sums), chunk by chunk."""
    err_sum = 0.0
    i0 = 0
    for x in ds.database_iterator(chunk_size):
        xh = decode(codes[i0:i0 + len(x)])
        err_sum += float(np.square(x - xh, dtype=np.float32).sum(axis=1, dtype=np.float64).sum())
        i0 += len(x)
        pb.update(len(x))
    return err_sum


def decoded_chunks(decode: Decoder, codes: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
    """The decoded base, ``chunk_size`` rows at a time."""
    for j0 in range(0, len(codes), chunk_size):
        yield decode(codes[j0:j0 + chunk_size])


def torch_codec(quantizer: Quantizer, device: torch.device) -> tuple[Encoder, Decoder]:
    """``quantizer``'s encode and decode on numpy arrays (computed on ``device``)."""
    def encode(x: np.ndarray) -> np.ndarray:
        return quantizer.encode(torch.from_numpy(x).to(device)).cpu().numpy()

    @torch.no_grad()
    def decode(c: np.ndarray) -> np.ndarray:
        idx = torch.from_numpy(c.astype(np.int64)).to(device)
        return quantizer.decode(idx).float().cpu().numpy()

    return encode, decode
