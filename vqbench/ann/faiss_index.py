"""Trained codebooks + base codes as faiss lookup-table indexes: search and export.

A quantizer's codebooks and the codes of an encoded base become a native faiss index,
so asymmetric-distance search runs on faiss's per-query lookup tables instead of our
decode-and-scan, and a trained run can be saved as a file that ``faiss.read_index`` loads:

Each quantizer declares its export (``Quantizer.faiss_export``); one that declares none is
refused with a ConfigError naming it:

* ``"pq"`` (PVQ; VQ with M = 1) -> ``IndexPQ`` (M sub-quantizers of d/M dims; centroids = our codebooks),
* ``"residual"`` (RVQ, AVQ: x_hat = sum of codewords) -> ``IndexResidualQuantizer`` with the codebooks set
  and ``ST_norm_float``: each code carries ||x_hat||^2 as a float, so
  ||q - x_hat||^2 = ||q||^2 + ||x_hat||^2 - 2 sum_m <q, c_m> is exact.

The stored codes are ours (added as packed sa codes), so search returns what the decoded
flat search returns (ties aside). Vectors ``add``-ed later are encoded by faiss's own
encoder: PQ's nearest centroids (= PVQ/VQ), RQ's greedy search (= RVQ) or, for AVQ, RQ's
beam search of the same width over the codebooks in fixed order.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from ..common.atomic import atomic_path
from ..common.checks import ConfigError
from ..quantizers import Quantizer
from .baselines import pack

# Codes packed and added per call (norms need their vectors decoded: chunk x d floats).
ADD_CHUNK = 65536
# The exports a quantizer can declare (Quantizer.faiss_export).
EXPORTS = ("pq", "residual")


def build_index(quantizer: Quantizer, codes: np.ndarray | None = None) -> faiss.Index:
    """A faiss index holding ``quantizer``'s codebooks and (optionally) the base ``codes`` [n, M]."""
    codebooks = np.ascontiguousarray(quantizer.codebooks.detach().cpu().float().numpy())
    M, K, d = codebooks.shape
    nbits = quantizer.bits_per_codebook
    export = quantizer.faiss_export
    if export not in EXPORTS:
        raise ConfigError(f"quantizer {quantizer.name!r} cannot be exported as a faiss index: its class declares "
                          f"faiss_export = {export!r}, not one of {list(EXPORTS)} (set experiment.search=flat and "
                          "experiment.save_index=false)")
    if export == "pq":
        index = faiss.IndexPQ(quantizer.dim, M, nbits)
        faiss.copy_array_to_vector(codebooks.ravel(), index.pq.centroids)
        index.pq.is_trained = True
    else:  # "residual": x_hat = sum of one codeword per codebook
        index = faiss.IndexResidualQuantizer(d, M, nbits, faiss.METRIC_L2, faiss.AdditiveQuantizer.ST_norm_float)
        rq = index.rq
        faiss.copy_array_to_vector(codebooks.ravel(), rq.codebooks)
        rq.max_beam_size = int(getattr(quantizer, "beam_width", 1))
        rq.use_beam_LUT = 1
        rq.is_trained = True
        rq.set_derived_values()
        rq.compute_codebook_tables()  # the lookup tables RQ's own encoder needs for later adds
    index.is_trained = True
    if codes is not None:
        add_codes(index, codes, M, nbits)
    return index


def add_codes(index: faiss.Index, codes: np.ndarray, M: int, nbits: int) -> None:
    """Append the base codes [n, M] (code indices) to ``index`` in faiss's packed layout."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != M:
        raise ValueError(f"faiss index: codes must have shape (n, {M}), got {codes.shape}")
    for start in range(0, codes.shape[0], ADD_CHUNK):
        chunk = codes[start:start + ADD_CHUNK]
        if isinstance(index, faiss.IndexPQ):
            packed = pack(chunk, nbits, index.code_size)
        else:  # codes then the float norm ||x_hat||^2, computed by faiss from the codes
            aq = index.rq
            idx = np.ascontiguousarray(chunk, dtype=np.int32)
            packed = np.zeros((len(idx), index.code_size), dtype=np.uint8)
            aq.pack_codes(len(idx), faiss.swig_ptr(idx), faiss.swig_ptr(packed))
        index.add_sa_codes(packed)


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(D, I) of the k nearest base entries of each query by ||q - x_hat||^2; short lists end in (inf, -1)."""
    D, I = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    D[I < 0] = np.inf
    return D, I


def save_index(index: faiss.Index, path: str | Path) -> Path:
    """Write ``index`` to ``path`` atomically (common/atomic.py: 0644 under the usual umask)."""
    path = Path(path)
    with atomic_path(path) as tmp:  # the usual 0644, not mkstemp's 0600
        faiss.write_index(index, str(tmp))
    return path


class IndexSearch:
    """For the ANN experiment: build the index of a quantizer from the base codes, then search it."""

    def __init__(self, quantizer: Quantizer):
        self.quantizer = quantizer
        self.index: faiss.Index | None = None

    def build(self, codes: np.ndarray) -> faiss.Index:
        self.index = build_index(self.quantizer, codes)
        return self.index

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Ids [nq, k] of the k nearest base vectors by ||q - x_hat||^2, nearest first."""
        if self.index is None:
            raise RuntimeError("IndexSearch.search: build(codes) must run first")
        return search(self.index, queries, k)[1]
