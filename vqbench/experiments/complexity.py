"""The encoding-cost columns of a run's metrics: vqbench's own operation count and, where the
paper's calculator covers the quantizer, the paper's (vqbench.paper.complexity)."""

from __future__ import annotations

from ..metrics.complexity import encode_wmops
from ..paper.complexity import paper_wmops_of
from ..quantizers import Quantizer


def complexity_metrics(quantizer: Quantizer) -> dict[str, float]:
    """Encoding cost per vector for a run's metrics: our count (`encode_wmops`, the code path
    vqbench runs) and the paper's convention (`encode_wmops_paper`, vqbench.paper.complexity)."""
    out = {"encode_wmops": encode_wmops(quantizer)}
    paper = paper_wmops_of(quantizer)
    if paper is not None:
        out["encode_wmops_paper"] = paper
    return out
