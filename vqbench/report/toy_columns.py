"""A toy row's scale-free forms, which do not depend on the paper's unit factor: MSE relative to
the data variance, and the gap to the Gaussian R-D bound (the paper's value measured against the
bound of our data model at the same bits). Columns of the toy pages (figure_table.py) and the
published side of their 40-bit evidence (figure_evidence.py)."""

from __future__ import annotations

import math

from ..metrics.rate_distortion import gap_db
from ..paper.conventions import from_paper_units
from .figure_data import Row

TOY_COLUMNS = ("ours_mse_rel", "paper_mse_rel", "ours_rd_gap_db", "paper_rd_gap_db")


def toy_columns(row: Row, figure: str) -> dict[str, float]:
    """`TOY_COLUMNS` of `row` (NaN where unknown: no run, no published point, no bound)."""
    out = {"ours_mse_rel": row.extra("mse_rel"), "ours_rd_gap_db": row.extra("rd_gap_db"),
           "paper_mse_rel": math.nan, "paper_rd_gap_db": math.nan}
    if row.paper is not None:
        out["paper_mse_rel"] = from_paper_units(row.paper[0], figure)
        bound, variance = row.extra("rd_bound_mse"), row.extra("data_variance")
        if not math.isnan(bound):
            out["paper_rd_gap_db"] = gap_db(out["paper_mse_rel"] * variance, bound)
    return out
