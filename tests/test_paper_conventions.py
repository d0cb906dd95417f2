"""vqbench.paper.conventions: the paper's toy-MSE units and the scale-free forms."""

import math

import numpy as np
import pytest

from vqbench.paper import figure
from vqbench.paper.conventions import (
    UNCORRELATED_SCALE,
    from_paper_units,
    paper_scale,
    published_rd_gap_db,
    ratio_db,
    rd_gap_db,
    relative_mse,
    to_paper_units,
)


def test_units_round_trip_and_known_values():
    assert relative_mse(64.0, 128.0) == 0.5
    assert to_paper_units(32.0, 64.0, "fig3_64") == pytest.approx(UNCORRELATED_SCALE * 0.5)
    assert to_paper_units(0.25, 0.5, "fig3_64") == to_paper_units(16.0, 32.0, "fig3_64")  # per dim == per vector
    assert from_paper_units(UNCORRELATED_SCALE, "fig3_128") == 1.0
    assert from_paper_units(to_paper_units(3.0, 12.0, "fig2a"), "fig2a") == pytest.approx(0.25)
    assert paper_scale("fig2b") == paper_scale("fig3_256") == UNCORRELATED_SCALE


def test_rd_gap_known_answer():
    # N(0, I_4) at 8 bits: bound 4 * 2^(-2*8/4) = 0.25 per vector; an MSE of 0.5 lies 3.0103 dB above it
    assert rd_gap_db(0.5, np.ones(4), 8) == pytest.approx(10 * math.log10(2), abs=1e-9)
    assert rd_gap_db(0.25, [1.0, 1.0, 1.0, 1.0], 8) == pytest.approx(0.0, abs=1e-9)
    # a value exactly on the bound in paper units has gap 0, whatever the eigenvalues' scale
    value = UNCORRELATED_SCALE * 2 ** (-2 * 12 / 64)
    assert published_rd_gap_db(value, "fig3_64", np.full(64, 3.0), 12) == pytest.approx(0.0, abs=1e-9)
    assert ratio_db(2.0, 1.0) == pytest.approx(3.0103, abs=1e-4)


def test_every_uncorrelated_published_point_lies_between_the_bound_and_the_variance():
    # the convention's invariant: relative MSE in [R-D bound per dim, 1] at every dim, method, bitrate
    for dim in (64, 128, 256):
        fig = figure(f"fig3_{dim}")
        for series in fig.series.values():
            for bits, value in zip(fig.x, series.mean):
                rel = from_paper_units(value, fig.name)
                assert 2 ** (-2 * bits / dim) < rel < 1.0, (dim, series.method, bits, rel)
                assert 0.0 < published_rd_gap_db(value, fig.name, np.ones(dim), bits) < 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="not a toy-MSE figure"):
        paper_scale("fig4b")
    with pytest.raises(ValueError, match="unknown paper figure"):
        paper_scale("fig9")
    with pytest.raises(ValueError, match="total_variance > 0"):
        relative_mse(1.0, 0.0)
    with pytest.raises(ValueError, match="positive"):
        ratio_db(0.0, 1.0)


def test_scale_fit_record_matches_the_fit_report_it_describes():
    """The anchors and factors in SCALE_FITS are those of results/paper/toy_model_fit.md (written by
    scripts/fit_paper_toy.py, which reads its anchors from SCALE_FITS): every anchor row is in the
    report, no other, and the factor and its range are the report's."""
    import re
    from pathlib import Path

    from vqbench.paper.conventions import SCALE_FITS, scale_fit

    text = (Path(__file__).resolve().parents[1] / "results" / "paper" / "toy_model_fit.md").read_text()
    units, level = SCALE_FITS["uncorrelated"], SCALE_FITS["correlated"]
    s, lo, hi = map(float, re.search(r"^S = ([\d.]+) \(range ([\d.]+)-([\d.]+),", text, re.M).groups())
    assert (units.scale, units.low, units.high) == (s, lo, hi)
    rows = re.findall(r"^\| (\d+) \| (rvq|pvq) \| (\d+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|$", text, re.M)
    anchors = {(int(d), m, int(b)) for d, m, b, _ in rows}
    assert anchors == {(d, m, b) for d in units.dims for m in units.methods for b in units.bits}
    assert len(anchors) == units.anchors == 12
    estimates = [float(r[3]) for r in rows]
    assert min(estimates) == units.low and max(estimates) == units.high
    f, lo, hi = map(float, re.search(r"^Fig\. 2a factor \(published / relative MSE, RVQ and PVQ at 12 and 16 bits\): "
                                     r"([\d.]+) \(range ([\d.]+)-([\d.]+)\)", text, re.M).groups())
    assert (level.scale, level.low, level.high) == (f, lo, hi) and level.bits == (12, 16)
    assert scale_fit("fig2a") is level and scale_fit("fig3_256") is units and paper_scale("fig2a") == level.scale
    with pytest.raises(ValueError, match="not a toy-MSE figure"):
        scale_fit("fig5")



def test_scale_fit_sizes_are_the_fit_reports():
    """The training and test sizes SCALE_FITS records are those the fit report names for its runs."""
    import re
    from pathlib import Path

    from vqbench.paper.conventions import SCALE_FITS

    text = (Path(__file__).resolve().parents[1] / "results" / "paper" / "toy_model_fit.md").read_text()
    named = set(re.findall(r"(\d+) train(?:,|\s*/)\s*(\d+) test", text))
    assert named == {("32768", "16384")}
    for name, fit in SCALE_FITS.items():
        assert (str(fit.num_train), str(fit.num_test)) in named, name
