"""faiss's classical quantizers as codecs with the same interface as ours.

Each baseline trains on the learn vectors, encodes to M codes of ``nbits`` bits and
decodes, so the ANN experiment evaluates it with exactly the same search and recall code:

* ``pq``      faiss.ProductQuantizer (k-means per subspace)
* ``opq``     faiss.OPQMatrix rotation + ProductQuantizer; the rotation starts at the identity
              (faiss's own default is a random rotation, see ``FaissCodec``)
* ``rq``      faiss.ResidualQuantizer, greedy (beam 1)
* ``rq_beam`` faiss.ResidualQuantizer, beam ``beam_width`` (training and encoding)
* ``lsq``     faiss.LocalSearchQuantizer (additive, ICM local search)

``encode`` returns the code indices (n, M) and ``decode`` takes them back; the packed
faiss bytes stay an internal detail (``pack``/``unpack``).
"""
from __future__ import annotations

import faiss
import numpy as np

BASELINES = ("pq", "opq", "rq", "rq_beam", "lsq")


def unpack(codes: np.ndarray, M: int, nbits: int) -> np.ndarray:
    """faiss packed codes (n, code_size) uint8 -> indices (n, M) (faiss.unpack_bitstrings)."""
    idx = faiss.unpack_bitstrings(np.ascontiguousarray(codes, dtype=np.uint8), M, nbits)
    return idx.astype(np.uint16 if nbits > 8 else np.uint8)


def pack(idx: np.ndarray, nbits: int, code_size: int) -> np.ndarray:
    """Inverse of ``unpack``: indices (n, M) -> packed (n, code_size) uint8 (faiss.pack_bitstrings,
    zero-padded to the quantizer's code size, which may hold more than the codes)."""
    packed = faiss.pack_bitstrings(np.ascontiguousarray(idx, dtype=np.int32), nbits)
    out = np.zeros((packed.shape[0], code_size), dtype=np.uint8)
    out[:, :packed.shape[1]] = packed
    return out


class FaissCodec:
    """Train / encode / decode through one faiss quantizer (and an optional rotation)."""

    def __init__(self, name: str, d: int, M: int, nbits: int, beam_width: int,
                 lsq_encode_ils_iters: int | None):
        if name not in BASELINES:
            raise ValueError(f"experiment.baselines: unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
        if name in ("pq", "opq") and d % M:
            raise ValueError(f"baseline {name}: dimension {d} is not divisible by M={M}")
        self.name, self.d, self.M, self.nbits = name, d, M, nbits
        self.K = 1 << nbits
        self.rotation = None
        if name in ("pq", "opq"):
            self.q = faiss.ProductQuantizer(d, M, nbits)
            if name == "opq":
                self.rotation = faiss.OPQMatrix(d, M)
                # the rotation's inner PQ (our nbits, not its default 8) is its own object: OPQ
                # training leaves it with few k-means iterations; self.q is then trained afresh
                self._opq_pq = faiss.ProductQuantizer(d, M, nbits)
                self.rotation.pq = self._opq_pq
                # Start from the identity, i.e. from PQ's own split, not faiss's default random
                # rotation: on SIFT descriptors (and any data whose contiguous blocks are already
                # good subspaces) the random start ends in a worse local optimum than plain PQ.
                # Measured on 20k siftlike1m learn vectors, held-out MSE: PQ 26,490; OPQ from a
                # random rotation (faiss "OPQ8,PQ8") 33,247; OPQ from the identity 24,760.
                faiss.copy_array_to_vector(np.eye(d, dtype=np.float32).ravel(), self.rotation.A)
        elif name in ("rq", "rq_beam"):
            self.q = faiss.ResidualQuantizer(d, M, nbits)
            self.q.max_beam_size = 1 if name == "rq" else int(beam_width)
            self.q.use_beam_LUT = 1  # beam search on lookup tables (same results, faster for d=128)
            # batch the beam's distance tables in 1 GiB (faiss default 5 GiB); training still holds
            # n x beam x d residuals twice (2 x 3.3 GB for 100k vectors at beam 64)
            self.q.max_mem_distances = 1 << 30
        else:
            self.q = faiss.LocalSearchQuantizer(d, M, nbits)
            if lsq_encode_ils_iters is not None:
                self.q.encode_ils_iters = int(lsq_encode_ils_iters)
        self.code_size = self.q.code_size
        self.bits = M * nbits

    def settings(self) -> dict[str, float]:
        out: dict[str, float] = {"bits": float(self.bits)}
        if self.name.startswith("rq"):
            out["beam_width"] = float(self.q.max_beam_size)
        if self.name == "lsq":
            out["encode_ils_iters"] = float(self.q.encode_ils_iters)
            out["train_iters"] = float(self.q.train_iters)
        return out

    def train(self, xt: np.ndarray, verbose: bool = False) -> None:
        """Train; `verbose`: faiss prints its own progress (RQ/LSQ iterations) to stdout."""
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        if hasattr(self.q, "verbose"):
            self.q.verbose = verbose
        if self.rotation is not None:
            self.rotation.train(xt)
            self.q.train(self.rotation.apply(xt))
        else:
            self.q.train(xt)

    def encode(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.rotation is not None:
            x = self.rotation.apply(x)
        return unpack(self.q.compute_codes(x), self.M, self.nbits)

    def decode(self, idx: np.ndarray) -> np.ndarray:
        x = self.q.decode(pack(idx, self.nbits, self.code_size))
        if self.rotation is not None:
            x = self.rotation.reverse_transform(x)
        return x


def build_baseline(name: str, d: int, M: int, nbits: int, beam_width: int, lsq_encode_ils_iters: int | None) -> FaissCodec:
    """A faiss baseline; `beam_width` (rq_beam) and `lsq_encode_ils_iters` (lsq) as the config sets them."""
    return FaissCodec(name, d, M, nbits, beam_width, lsq_encode_ils_iters)
