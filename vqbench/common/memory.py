"""Memory a run needs, estimated from its settings before any work, and the one check that
refuses a run this machine cannot hold (``dataset.dim=1e9`` ends in one line with the
estimate, not in an allocation traceback after minutes of work).

Each experiment's ``estimate_memory(cfg, ...)`` lists its largest allocations as terms
``{"key=value": bytes}`` (the quantizer's own come from its class, ``Quantizer.memory_terms``,
built from the helpers here); :func:`refuse_if_too_big` compares their sum with the machine's
physical memory and names the term that dominates. The estimates are deliberately rough
(the large arrays only, float32 = 4 bytes, float64 = 8); they exist to catch values that are
orders of magnitude off, so the limit is the whole physical memory, not what is free now.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .checks import ConfigError

F32, F64 = 4, 8
ADAM_COPIES = 4  # parameter, gradient, two moments


def physical_memory() -> int:
    """Bytes of RAM of this machine (Linux/macOS sysconf; 2^62 where unknown)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes:.0f} B"
        nbytes /= 1024
    raise AssertionError  # unreachable


def codebook_terms(num_codebooks: int, codebook_size: int, codeword_dim: int) -> dict[str, float]:
    """M codebooks of K codewords of `codeword_dim` floats, with Adam's copies, keyed by
    ``quantizer.num_codebooks`` (the start of every quantizer's ``memory_terms``)."""
    M = int(num_codebooks)
    return {f"quantizer.num_codebooks={M}": float(M) * int(codebook_size) * int(codeword_dim) * F32 * ADAM_COPIES}


def batch_distance_terms(num_codebooks: int, codebook_size: int, dim: int, batch: int | None) -> dict[str, float]:
    """The distances of a training batch to every codeword (and its few dim-sized copies), keyed
    by the larger driver of the two: ``optimizer.batch_size`` or ``quantizer.num_codebooks``;
    nothing for a fit without batches (`batch` None)."""
    if batch is None:
        return {}
    M, K = int(num_codebooks), int(codebook_size)
    key = f"optimizer.batch_size={batch}" if batch / 256 >= M / 4 else f"quantizer.num_codebooks={M}"
    return {key: float(batch) * (M * K + 4 * dim) * F32}


def add_terms(terms: dict[str, float], more: Mapping[str, float]) -> dict[str, float]:
    """Add the terms `more` into `terms` (summing those of the same key); returns `terms`."""
    for key, nbytes in more.items():
        terms[key] = terms.get(key, 0.0) + nbytes
    return terms


def refuse_if_too_big(terms: Mapping[str, float], limit: int | None = None) -> float:
    """Raise a one-line ConfigError when the estimated total exceeds `limit` (default: the
    machine's physical memory), naming the largest term; returns the total."""
    limit = physical_memory() if limit is None else limit
    total = float(sum(terms.values()))
    if total > limit:
        key = max(terms, key=lambda k: terms[k])
        raise ConfigError(f"{key}: this run would need about {human(total)} of memory ({human(terms[key])} for this "
                          f"setting alone; estimated before any work), more than this machine's {human(limit)}; "
                          f"use a smaller {key.split('=')[0]}")
    return total
