"""vqbench.paper.reference: the transcription of the published figure data."""

import pytest

from vqbench.paper import FIGURES, Figure, Series, figure
from vqbench.paper.reference import METHODS, METRICS

BITS = (12, 16, 20, 24, 28, 32, 36, 40)
NAMES = ("fig2a", "fig2b", "fig3_64", "fig3_128", "fig3_256", "fig4a", "fig4b", "fig4c", "fig5", "fig6a", "fig6b")


def test_every_figure_is_present_and_complete():
    assert tuple(FIGURES) == NAMES
    for name, fig in FIGURES.items():
        assert isinstance(fig, Figure) and fig.name == name and fig.title and fig.data
        assert fig.metric in METRICS and fig.x_name in ("bits", "T")
        assert fig.series, name
        for method, s in fig.series.items():
            assert isinstance(s, Series) and s.method == method and method in METHODS
            assert len(s.mean) == len(fig.x), (name, method)
            assert (s.low is None) == (s.high is None), (name, method)
            if s.low is not None:
                assert len(s.low) == len(s.high) == len(fig.x), (name, method)
            assert all(isinstance(v, float) for v in s.mean)


def test_axes_and_series_per_figure():
    for name in NAMES:
        fig = figure(name)
        if name.startswith(("fig2", "fig3", "fig4", "fig6b")):
            assert fig.x == BITS and fig.x_name == "bits"
            assert set(fig.series) == {"avq", "rvq", "pvq"}
    assert figure("fig5").x == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    assert set(figure("fig5").series) == {"avq", "rvq", "pvq", "avq_baseline", "pvq_baseline"}
    assert figure("fig6a").x == (1, 10, 100, 1000, 10000)
    assert set(figure("fig6a").series) == {"rvq", "rvq_baseline"}
    # bands: every proposed curve has one except the complexity figures; baselines have none
    for name in ("fig4c", "fig6b"):
        assert all(s.low is None for s in figure(name).series.values())
    assert figure("fig5").series["pvq_baseline"].low is None
    assert figure("fig2a").series["pvq"].low is not None


def test_spot_values_first_and_last():
    f = figure
    assert f("fig2a").series["avq"].mean[0] == 5.0118265328700975
    assert f("fig2a").series["pvq"].mean[-1] == 4.269080174355591
    assert f("fig2a").series["rvq"].low[0] == 6.209554906281569
    assert f("fig3_128").series["avq"].mean[0] == 128.171807337444
    assert f("fig3_256").series["rvq"].mean[-1] == 115.02788858647068
    assert f("fig4b").series["rvq"].mean[3] == 26.07757968560126
    assert f("fig4b").series["pvq"].mean[0] == 23.81299634820018
    assert f("fig4a").series["avq"].mean[0] == 0.8329944780867174
    assert f("fig4c").series["avq"].mean[0] == -0.31026327412521015
    assert f("fig4c").series["pvq"].mean[-1] == -0.8218925114194595
    assert f("fig5").series["avq"].mean[0] == 0.29226
    assert f("fig5").series["pvq_baseline"].mean[-1] == 0.9952286282306164
    assert f("fig6a").series["rvq_baseline"].mean == (0.26281, 0.66241, 0.95604, 1.0, 1.0)
    assert f("fig6b").series["avq"].mean[-1] == 2.328012459262243
    assert f("fig6b").series["rvq"].mean[0] == -1.9889373052702652


def test_fig2b_is_the_64_dim_point_of_fig3():
    assert figure("fig2b").series == figure("fig3_64").series


def test_bands_enclose_the_means_where_the_paper_is_consistent():
    # the published PVQ upper band of Fig. 5 is a copy of RVQ's (see published_apps); all others hold
    for fig in FIGURES.values():
        for method, s in fig.series.items():
            if s.low is None or (fig.name, method) == ("fig5", "pvq"):
                continue
            assert all(lo <= m <= hi for lo, m, hi in zip(s.low, s.mean, s.high)), (fig.name, method)
    assert figure("fig5").series["pvq"].high == figure("fig5").series["rvq"].high


def test_unknown_figure_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown paper figure 'fig7'.*fig2a, fig2b"):
        figure("fig7")


def test_published_records_are_read_only():
    """The published numbers and the paper's counts are frozen: no caller can change them in place."""
    import dataclasses

    from vqbench.paper.complexity import PAPER_COUNTS

    with pytest.raises(dataclasses.FrozenInstanceError):
        figure("fig4b").series["avq"].mean = (0.0,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        figure("fig4b").name = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_COUNTS["avq"].beam = False
