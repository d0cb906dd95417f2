"""AVQ beam search compiled with numba for CPU tensors (the torch search in avq.py stays the
reference and the CUDA path).

Same search, same tables, same float32 arithmetic as :meth:`AVQ._encode_chunk`:

* q0[i, j] = ||x_i - c_j||^2 for all M*K codewords and ||x_i||^2 come from torch (addmm),
  cross2[j, j'] = 2<c_j, c_j'> from the shared table cache, so both engines start from
  bit-identical tables;
* a child's table is (parent's table + cross2 row of the new codeword) + (child error - parent
  error), added in that order as the torch code does;
* each step keeps the W smallest children with distinct codeword *sets* (a set reached through
  several orderings keeps its smallest distance; on equal distances the lower parent index, as
  the reference's stable duplicate mask does); the last step keeps the single best child.

The compiled kernels are in avq_kernel.py (and the published search's, ``authors_search``, in
avq_authors_kernel.py); this module runs them in parallel: vectors run on threads (the compiled code releases the GIL), blocks of them per job.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .avq_kernel import _encode_rows

_pool: ThreadPoolExecutor | None = None
_pool_key = (0, 0)  # (threads, pid): a forked child must not reuse its parent's (absent) threads


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (threads, os.getpid())
    if _pool is None or _pool_key != key:
        if _pool is not None and _pool_key[1] == key[1]:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vqbench-avq")
        _pool_key = key
    return _pool


@torch.compiler.disable  # numba's dispatcher cannot be traced: torch.compile runs it outside the graph
def beam_search(q0: torch.Tensor, x_sq: torch.Tensor, cross: torch.Tensor, keys: torch.Tensor,
                num_codebooks: int, beam_width: int, threads: int | None = None) -> torch.Tensor:
    """Codes [n, M] (int64) from the root tables q0 [n, M*K], ||x||^2 [n] and the cross-product
    table cross [M*K, M*K] (all CPU, one float dtype); keys [M*K] int64 set-hash keys.

    Runs on ``threads`` threads (default torch.get_num_threads()): the compiled function
    releases the GIL, so plain Python threads run it in parallel over blocks of vectors
    without a second OpenMP runtime next to torch's."""
    args = (_array(q0), _array(x_sq), _array(cross).reshape(-1), _array(keys), num_codebooks, beam_width)
    return run_rows(_encode_rows, args, q0.shape[0], num_codebooks, threads)


@torch.compiler.disable
def authors_search(q0: torch.Tensor, x_sq: torch.Tensor, cross: torch.Tensor, num_codebooks: int,
                   beam_width: int, threads: int | None = None) -> torch.Tensor:
    """The published search (avq_authors.py) on the same tables as ``beam_search``, compiled."""
    from .avq_authors_kernel import authors_rows

    args = (_array(q0), _array(x_sq), _array(cross).reshape(-1), num_codebooks, beam_width)
    return run_rows(authors_rows, args, q0.shape[0], num_codebooks, threads)


def _array(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.numpy())


def run_rows(kernel, args: tuple, n: int, num_codebooks: int, threads: int | None) -> torch.Tensor:
    """``kernel(*args, lo, hi, out)`` over rows 0..n-1 of out [n, M] (int64), on threads."""
    out = np.empty((n, num_codebooks), np.int64)
    if n == 0:
        return torch.from_numpy(out)
    threads = max(1, min(threads or torch.get_num_threads(), n))
    if threads == 1:
        kernel(*args, 0, n, out)
        return torch.from_numpy(out)
    kernel(*args, 0, 0, out)  # load or compile on this thread, not in every worker at once
    # A few blocks per thread even out the load when other processes share the cores.
    blocks = min(n, threads * 4)
    bounds = [b * n // blocks for b in range(blocks + 1)]
    jobs = [_executor(threads).submit(kernel, *args, lo, hi, out) for lo, hi in zip(bounds, bounds[1:])]
    for job in jobs:
        job.result()
    return torch.from_numpy(out)
