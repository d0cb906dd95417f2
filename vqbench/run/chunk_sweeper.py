"""A sweep in slices: ``hydra.sweeper.chunk=I/N`` runs the I-th of N slices of the job list.

Hydra's basic sweeper with one addition: vqbench's default sweeper (conf/config.yaml selects
hydra/sweeper=chunked; the class is hydra_plugins.vqbench_sweeper.ChunkSweeper, since Hydra
loads plugins only from the hydra_plugins package; this module holds its logic). The
job list is the same as the basic sweeper's (the product of the swept values, in order); slice
I takes jobs I-1, I-1+N, I-1+2N, ... (interleaved, so slow and fast settings spread over the
slices alike), and each job keeps the directory it has in the whole sweep
(``hydra.sweep.subdir`` = its index in the full list), so the slices of one sweep directory
add up to the whole sweep and a report of that directory sees their union. ``chunk: null``
(the default) is the basic sweeper.

    vqbench -m +paper=fig2a hydra.sweep.dir=multirun/fig2a hydra.sweeper.chunk=1/4 resume=true
"""

from __future__ import annotations

import re
from typing import Any

from hydra.errors import HydraException

CHUNK = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_chunk(text: Any) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N; a HydraException naming the key otherwise."""
    match = CHUNK.match(str(text))
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise HydraException(f"hydra.sweeper.chunk must be I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def chunk_indices(total: int, index: int, count: int) -> list[int]:
    """Positions in a job list of ``total`` jobs that slice ``index`` of ``count`` runs."""
    return list(range(index - 1, total, count))
