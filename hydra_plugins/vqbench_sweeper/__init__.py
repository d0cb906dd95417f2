"""Hydra sweeper plugin of vqbench: the basic sweeper plus ``hydra.sweeper.chunk=I/N``
(see vqbench/chunk_sweeper.py; Hydra loads plugins only from the hydra_plugins package)."""

from __future__ import annotations

from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from vqbench.run.chunk_sweeper import chunk_indices, parse_chunk


class ChunkSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict[str, str]] = None,
                 chunk: Optional[str] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.chunk = None if chunk is None else parse_chunk(chunk)

    def split_arguments(self, overrides: Any, max_batch_size: Optional[int]) -> list[list[list[str]]]:  # type: ignore[override]
        """The basic sweeper's batches, or with a chunk its slice (each job's subdir pinned to its
        index in the full list). BasicSweeper.sweep calls this as self.split_arguments(...)."""
        if self.chunk is None:
            return BasicSweeper.split_arguments(overrides, max_batch_size)
        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        index, count = self.chunk
        picked = [[*jobs[k], f"hydra.sweep.subdir={k}"] for k in chunk_indices(len(jobs), index, count)]
        size = max_batch_size or len(picked) or 1
        return [picked[i:i + size] for i in range(0, len(picked), size)]
