"""The data of one figure page: a `Row` per (method, x) with its values over seeds and the
published point, `FigureData` for the whole panel, and `FigureError` when runs cannot make it.
Collected by figure_collect.py, read by figure_table.py, figure_markdown.py, figure_plot.py."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .panels import Panel

BAND = (0.05, 0.95)


class FigureError(ValueError):
    """The runs given cannot make this figure (e.g. quick and full runs mixed)."""


@dataclass
class Row:
    method: str
    x: float
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    extras: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    flags: set[str] = field(default_factory=set)
    paper: tuple[float, float | None, float | None] | None = None  # mean, low, high

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> bool:
        """A published point without a finished run of ours."""
        return self.paper is not None and not self.values

    def stat(self, band: tuple[float, float] = BAND) -> tuple[float, float, float]:
        if not self.values:
            return math.nan, math.nan, math.nan
        v = np.asarray(self.values, dtype=np.float64)
        lo, hi = np.quantile(v, band)
        return float(v.mean()), float(lo), float(hi)

    def extra(self, key: str) -> float:
        vals = self.extras.get(key)
        return float(np.mean(vals)) if vals else math.nan


@dataclass
class FigureData:
    panel: Panel
    rows: list[Row]
    runs: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    incomplete: list[Path]
    duplicates: int = 0
    superseded: int = 0  # older attempts of this figure's jobs, left out (runs.py)
    # runs of another mode shown beside the main series (e.g. full beside quick), never averaged with it
    beside: dict[tuple[str, float], Row] = field(default_factory=dict)
    beside_runs: list[dict[str, Any]] = field(default_factory=list)
    beside_mode: str | None = None

    @property
    def missing(self) -> int:
        """How many published points have no finished run."""
        return sum(row.missing for row in self.rows)
