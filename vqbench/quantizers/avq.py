"""AVQ (additive quantization): x_hat = sum of one codeword from each of M full-dim codebooks.

Codes are found by beam search of width W over the union of the M codebooks, each
codebook used at most once per vector (Babenko & Lempitsky, CVPR 2014).

The search runs on lookup tables, never on D-dimensional distances. With C the M*K
codewords stacked and s the sum of a beam's chosen codewords,

    ||x - s - c_j||^2 = ||x - s||^2 + ||c_j||^2 - 2<x, c_j> + 2<s, c_j>.

For every beam we keep q[j] = ||x - s - c_j||^2, the distance after adding codeword j,
for the codewords j of its still unused codebooks. Choosing j* gives a child whose table is

    q'[j] = q[j] + (q[j*] - ||x - s||^2) + 2<c_j*, c_j>,

one row of the codeword cross-product table (computed once per codebook update), minus
the block of the codebook just used. So a beam step is a top-k, a gather and an add.
Orderings of the same set of codewords are merged with a hash of the set.

Two engines run this search on the same tables with the same float arithmetic:
``engine="torch"`` (below; the reference, and the CUDA path) and ``engine="numba"``
(avq_numba.py: compiled, parallel over vectors, a bounded per-vector selection instead of
the top-k). ``engine="auto"`` takes numba for CPU codebooks, torch otherwise. ``search="authors"``
(``quantizer=avq_authors``): the published code's search instead, flaw included (avq_authors.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..common.checks import ConfigError
from ..common.memory import F32
from ..metrics.complexity import ADD, COMPARE, MAC, MOVE, topk_ops
from .avq_authors import authors_beam_search, authors_encode_ops
from .base import ENCODE_BUDGET_ELEMENTS, Quantizer, QuantizerConfig, additive_ema_targets, init_residuals_from_data
from .kmeans import alternate_least_squares, fit_residual_kmeans

# Largest M*K whose (M*K)^2 float32 cross-product table we build (256 MB).
MAX_TABLE_CODEWORDS = 8192
ENGINES = ("auto", "torch", "numba")
SEARCHES = ("beam", "authors")  # the textbook beam search, or the published code's (avq_authors.py)


@dataclass
class AVQConfig(QuantizerConfig):
    name: str = "avq"
    beam_width: int = 16
    search: str = "beam"  # "beam" (textbook, duplicate sets merged) or "authors" (the published code's)


class AVQ(Quantizer):
    name = "avq"
    Config = AVQConfig
    faiss_export = "residual"
    classical_fit = "faiss k-means, AVQ alternations by the compiled CPU beam search"

    def __init__(self, dim: int, num_codebooks: int, bits_per_codebook: int, beam_width: int,
                 engine: str = "auto", search: str | None = None):  # search None: "beam", textbook
        self.check_config({"num_codebooks": num_codebooks, "bits_per_codebook": bits_per_codebook,
                           "beam_width": beam_width, "search": search or "beam"}, dim)
        if engine not in ENGINES:
            raise ValueError(f"avq: engine must be one of {ENGINES}, got {engine!r}")
        super().__init__(dim, num_codebooks, bits_per_codebook, codeword_dim=dim)
        self.beam_width = beam_width
        self.engine, self.search = engine, search or "beam"
        self.register_buffer("_set_keys", self._make_set_keys(), persistent=False)
        self._tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._tables_of: torch.Tensor | None = None  # the codebooks the tables were built from

    def _make_set_keys(self) -> torch.Tensor:
        """A random 64-bit key per codeword; a beam's hash is the sum over its chosen set."""
        total = self.num_codebooks * self.codebook_size
        return torch.randint(0, (1 << 62) // self.num_codebooks, (total,), generator=torch.Generator().manual_seed(0))

    def resize_codebooks(self, codebook_size: int) -> None:
        super().resize_codebooks(codebook_size)
        self._set_keys = self._make_set_keys().to(self.codebooks.device)
        self._tables, self._tables_of = None, None

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beam_width={self.beam_width}, search={self.search}, engine={self.engine}"

    def uses_compiled_engine(self) -> bool:
        """Whether encode() runs the numba beam search (CPU codebooks, engine auto/numba)."""
        if self.engine == "torch":
            return False
        if self.codebooks.device.type != "cpu":
            if self.engine == "numba":
                raise ValueError(f"avq: engine='numba' runs on CPU only, codebooks are on {self.codebooks.device}")
            return False
        return True

    def encode_chunk_size(self) -> int:
        if self.uses_compiled_engine():
            # Only the root tables q0 [n, M*K] are per chunk; beam tables are per thread.
            return max(1, (ENCODE_BUDGET_ELEMENTS >> 2) // (self.num_codebooks * self.codebook_size))
        # A step's tables hold W*M*K floats per vector; keep them cache-friendly (~8 MB).
        per_vector = self.beam_width * self.num_codebooks * self.codebook_size
        return max(1, (ENCODE_BUDGET_ELEMENTS >> 4) // per_vector)

    def _prepare_encode(self) -> None:
        """Build the codeword tables, or keep them while the codebooks hold the values they were
        built from (repeated encodes; every optimizer step changes them)."""
        codebooks = self.codebooks.detach()
        built = self._tables_of
        if (built is not None and self._tables is not None and built.shape == codebooks.shape
                and built.dtype == codebooks.dtype and built.device == codebooks.device
                and torch.equal(built, codebooks)):
            return
        flat = codebooks.reshape(-1, self.dim)  # [MK, D]
        M, K = self.num_codebooks, self.codebook_size
        # cross[j, j'] = 2<c_j, c_j'> between codewords of different codebooks; the diagonal
        # blocks (same codebook) are never read, so only the blocks above it are multiplied.
        cross = torch.zeros(M * K, M * K, dtype=flat.dtype, device=flat.device)
        for m in range(M - 1):
            block = 2.0 * (flat[m * K:(m + 1) * K] @ flat[(m + 1) * K:].t())  # [K, (M-m-1)K]
            cross[m * K:(m + 1) * K, (m + 1) * K:] = block
            cross[(m + 1) * K:, m * K:(m + 1) * K] = block.t()
        self._tables = (flat, flat.pow(2).sum(1), cross)
        self._tables_of = codebooks.clone()

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        assert self._tables is not None, "_prepare_encode must run before _encode_chunk"
        flat, sq_norms, cross = self._tables
        n, M, W = x.shape[0], self.num_codebooks, self.beam_width
        x_sq = x.pow(2).sum(1, keepdim=True)
        q = torch.addmm(x_sq + sq_norms, x, flat.t(), alpha=-2.0)
        compiled = self.uses_compiled_engine()
        if compiled:
            from . import avq_numba  # imported on first use: numba loads only for AVQ on CPU
        if self.search == "authors":
            return (avq_numba.authors_search if compiled else authors_beam_search)(q, x_sq.view(n), cross, M, W)
        if compiled:
            return avq_numba.beam_search(q, x_sq.view(n), cross, self._set_keys, M, W)
        return self._torch_beam_search(q, x_sq, cross)

    def _torch_beam_search(self, q: torch.Tensor, x_sq: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
        """The reference beam search in torch (any device): codes [n, M] from the root tables
        q [n, M*K] (||x - c_j||^2), ||x||^2 [n, 1] and the cross-product table [M*K, M*K]."""
        n, M, K, W = q.shape[0], self.num_codebooks, self.codebook_size, self.beam_width
        dev = q.device
        # Each beam keeps tables only for its U unused codebooks: q [n, beams, U, K] with
        # q[.., u, k] = ||x - s - C_{cb[u]}[k]||^2 and cb [n, beams, U] naming the codebooks.
        q = q.view(n, 1, M, K)
        cross2 = cross.view(M * K * M, K)  # cross2[j*M + m] = 2<c_j, codebook m>
        cb = torch.arange(M, device=dev).expand(n, 1, M)
        err = x_sq  # [n, beams]: ||x - s||^2 of each beam
        codes = torch.zeros(n, 1, M, dtype=torch.long, device=dev)
        set_hash = torch.zeros(n, 1, dtype=torch.long, device=dev)

        for step in range(M):
            beams, unused = q.shape[1], q.shape[2]
            per_beam = unused * K
            flat_q = q.reshape(n, beams * per_beam)
            if step == M - 1:  # last codeword: only the best child matters
                pool, width = 1, 1
                cand_q, cand = flat_q.min(dim=1, keepdim=True)
            else:
                # A set of step+1 codewords is reached from at most step+1 parents, so the
                # best W*(step+1) children hold W distinct sets whenever that many exist.
                pool = min(W * (step + 1), beams * per_beam)
                width = min(W, pool)
                cand_q, cand = smallest(flat_q, pool)
            parent, block, k = cand // per_beam, (cand // K) % unused, cand % K
            codebook = cb.gather(1, parent.unsqueeze(2).expand(-1, -1, unused)).gather(2, block.unsqueeze(2))
            codebook = codebook.squeeze(2)
            set_hash = set_hash.gather(1, parent) + self._set_keys[codebook * K + k]
            if pool > width:
                if step > 0:
                    cand_q = cand_q.masked_fill(_later_duplicates(set_hash), float("inf"))
                cand_q, keep = cand_q.topk(width, dim=1, largest=False, sorted=True)
                parent, block, k = parent.gather(1, keep), block.gather(1, keep), k.gather(1, keep)
                codebook, set_hash = codebook.gather(1, keep), set_hash.gather(1, keep)

            codes = codes.gather(1, parent.unsqueeze(2).expand(-1, -1, M))
            codes.scatter_(2, codebook.unsqueeze(2), k.unsqueeze(2))
            if step == M - 1:
                return codes[:, 0]

            # Child tables: the parent's blocks minus the one just used, plus
            # (child error - parent error) + 2<c_new, c> from the cross-product table.
            keep_block = torch.arange(unused - 1, device=dev).expand(n, width, -1)
            keep_block = keep_block + (keep_block >= block.unsqueeze(2))  # [n, width, U-1]
            child_cb = cb.gather(1, parent.unsqueeze(2).expand(-1, -1, unused)).gather(2, keep_block)
            parent_rows = (torch.arange(n, device=dev).view(n, 1, 1) * beams + parent.unsqueeze(2)) * unused
            child_q = q.reshape(-1, K).index_select(0, (parent_rows + keep_block).flatten())
            new_cw = (codebook * K + k).unsqueeze(2)
            child_q += cross2.index_select(0, (new_cw * M + child_cb).flatten())
            # inf - inf (a padding child of a padding beam) must stay +inf, not NaN.
            delta = (cand_q - err.gather(1, parent)).nan_to_num(nan=float("inf"))
            q = child_q.view(n, width, unused - 1, K)
            q += delta.view(n, width, 1, 1)
            err, cb = cand_q, child_cb
        raise AssertionError("unreachable")  # pragma: no cover

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.selected_codewords(codes).sum(dim=1)

    # ------------------------------------------------------------------ config, fit, complexity
    @classmethod
    def check_config(cls, qcfg: Mapping[str, Any], dim: int | None = None, dim_source: str = "data dimension") -> None:
        super().check_config(qcfg, dim, dim_source)
        if qcfg.get("search", "beam") not in SEARCHES:
            raise ConfigError(f"quantizer.search must be one of {list(SEARCHES)}, got {qcfg['search']!r}")
        total = qcfg["num_codebooks"] * (1 << qcfg["bits_per_codebook"])
        if total > MAX_TABLE_CODEWORDS:
            raise ConfigError(
                f"quantizer=avq: num_codebooks*2^bits_per_codebook = {total} codewords exceeds "
                f"{MAX_TABLE_CODEWORDS} (its lookup table would not fit in memory; lower "
                f"quantizer.bits_per_codebook or quantizer.num_codebooks)"
            )

    @classmethod
    def from_config(cls, qcfg: Mapping[str, Any], dim: int) -> "AVQ":
        return cls(dim, int(qcfg["num_codebooks"]), int(qcfg["bits_per_codebook"]), int(qcfg["beam_width"]),
                   search=str(qcfg.get("search", "beam")))

    @classmethod
    def memory_terms(cls, qcfg: Mapping[str, Any], dim: int) -> dict[str, float]:
        """The codebooks (with Adam's copies), their cross-product table, the search's tables (per thread)."""
        M, K, W = int(qcfg["num_codebooks"]), 1 << int(qcfg["bits_per_codebook"]), int(qcfg["beam_width"])
        terms = super().memory_terms(qcfg, dim)
        terms[f"quantizer.num_codebooks={M}"] += float(M * K) ** 2 * F32
        terms[f"quantizer.beam_width={W}"] = float(W) * M * K * F32 * 2 * (os.cpu_count() or 1)
        return terms

    def encode_ops(self) -> int:
        """The beam search above, step by step: root table, top-k selections, set-hash
        deduplication and child-table updates."""
        M, K, D, W = self.num_codebooks, self.codebook_size, self.dim, self.beam_width
        if self.search == "authors":
            return authors_encode_ops(M, K, D, W)
        ops = M * K * (D * MAC + 2 * ADD)  # <x, c> for every codeword, root table
        beams = 1
        for step in range(M):
            unused = M - step
            candidates = beams * unused * K
            if step == M - 1:
                ops += candidates * COMPARE  # argmin over the last tables
                break
            pool = min(W * (step + 1), candidates)
            width = min(W, pool)
            ops += topk_ops(candidates, pool)
            if step > 0 and pool > width:  # hash, sort and drop repeated sets, pick the width best
                ops += pool * ADD + topk_ops(pool, pool) + topk_ops(pool, width)
            # child tables: gather (move) + cross-product row (add) + error shift (add)
            ops += width * (unused - 1) * K * (MOVE + 2 * ADD)
            beams = width
        return ops

    def fit_kmeans(self, x: np.ndarray, lloyd_iterations: int, alternations: int, seed: int,
                   progress: bool) -> dict[str, float]:
        """Residual k-means as the start, then AQ's alternations (training/kmeans.py)."""
        fit_residual_kmeans(self, x, lloyd_iterations, seed, progress)
        return alternate_least_squares(self, torch.from_numpy(x), alternations, progress)

    def init_from_data(self, data: torch.Tensor, generator: torch.Generator) -> None:
        init_residuals_from_data(self, data, generator)

    def ema_targets(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return additive_ema_targets(self.selected_codewords(codes), x, earlier_only=False)


def smallest(values: torch.Tensor, k: int, groups: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of each row of ``values`` [n, L], sorted ascending, with their
    column indices: ``values.topk(k, largest=False)``, but with a far smaller top-k.

    Partition each row into L / groups sets of ``groups`` entries, set j holding the columns
    j, j + L/groups, j + 2L/groups, ... Only the k sets with the smallest minima can hold the
    k smallest entries: an entry of any other set is preceded by at least k set minima that
    are no larger. So one elementwise minimum over ``groups`` contiguous slices, a top-k over
    the set minima, a gather of k * groups entries and a top-k over those give the same values
    (ties may pick other, equal entries) at a fraction of the cost when L >> k * groups.
    On one CPU core, rows of the ANN beam search (L = 32k..115k, k = 128..448, 8 sets)
    take 2.4-4.0 ms instead of 4.4-10.4 ms for a plain top-k.
    """
    n, L = values.shape
    if L % groups or L < 2 * k * groups:
        return values.topk(k, dim=1, largest=False, sorted=True)
    stride = L // groups
    set_min = values.view(n, groups, stride).amin(dim=1)  # [n, stride], vectorised over stride
    _, sets = set_min.topk(k, dim=1, largest=False, sorted=False)
    cols = (sets.unsqueeze(2) + stride * torch.arange(groups, device=values.device)).view(n, k * groups)
    vals, pos = values.gather(1, cols).topk(k, dim=1, largest=False, sorted=True)
    return vals, cols.gather(1, pos)


def _later_duplicates(hashes: torch.Tensor) -> torch.Tensor:
    """Mask [n, L]: True where a row's hash already occurred at an earlier sorted position."""
    sorted_hash, order = hashes.sort(dim=1, stable=True)
    repeat = sorted_hash[:, 1:] == sorted_hash[:, :-1]
    mask = torch.zeros_like(hashes, dtype=torch.bool)
    mask.scatter_(1, order[:, 1:], repeat)
    return mask
