"""The parts of a figure page as data: a panel's kind (not a flag on its points function) decides
its columns and sections, a missing point is counted from the rows (not found in the flags' text),
complexity rows are named tuples, the 40-bit study's optimizers are a table, and report/'s modules
stay in the layers of pyproject.toml's import-linter contract, each small."""

import ast
import csv
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from test_figures import toy_run

from vqbench.paper.reference import figure
from vqbench.report.complexity_page import ComplexityRow, complexity_rows, draw_complexity
from vqbench.report.figure_collect import collect
from vqbench.report.figure_data import FigureData, Row
from vqbench.report.figure_evidence import _study
from vqbench.report.figure_page import write_figure
from vqbench.report.figure_plot import draw
from vqbench.report.figure_table import MISSING_FLAG, table, table_columns
from vqbench.report.panels import PANELS, Panel, PanelKind, toy_points
from vqbench.run.runs import scan_runs

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "vqbench" / "report"


def toy_sweep(root):
    """fig2b runs: AVQ at 12 bits (seeds 0, 1) and PVQ at 40 bits (seed 0)."""
    toy_run(root / "0", "avq", 12, 0, 44.0)
    toy_run(root / "1", "avq", 12, 1, 46.0)
    toy_run(root / "2", "pvq", 40, 0, 30.0)
    return scan_runs([root])


# ----------------------------------------------------------------------------- missing points
def test_a_row_is_missing_when_published_without_a_run():
    assert Row("avq", 12, paper=(1.0, None, None)).missing
    assert not Row("avq", 12, values=[2.0], seeds=[0], paper=(1.0, None, None)).missing
    assert not Row("faiss_rq", 12, values=[2.0], seeds=[0]).missing  # ours only: nothing published
    assert not Row("faiss_rq", 12).missing
    rows = [Row("avq", 12, paper=(1.0, None, None)), Row("rvq", 12, paper=(1.0, None, None)),
            Row("pvq", 12, values=[1.0], seeds=[0], paper=(1.0, None, None))]
    assert FigureData(Panel("fig2b"), rows, [], [], []).missing == 2


def test_missing_points_are_counted_from_the_rows_not_from_the_flags_text(tmp_path):
    """A point with a run whose flag happens to contain the word "missing" is not a missing point."""

    def points(run):
        m = run["metrics"]
        yield run["quantizer"]["name"], m["bits"], m["mse"], {}, ("usage record missing in a seed",)

    panel = Panel("fig2b", ("fig2b",), points=points, unit="MSE")
    runset = toy_sweep(tmp_path / "runs")
    published = 3 * len(figure("fig2b").x)
    summary = write_figure(panel, runset, tmp_path / "out")
    assert summary["missing"] == published - 2  # AVQ 12 and PVQ 40 have runs
    md = (tmp_path / "out" / "fig2b.md").read_text()
    assert f"{published - 2} published points without a run)" in md
    rows = {(r["method"], r["bits"]): r for r in csv.DictReader((tmp_path / "out" / "fig2b.csv").open())}
    assert rows["avq", "12"]["flags"] == "usage record missing in a seed"
    assert rows["rvq", "12"]["flags"] == MISSING_FLAG and rows["rvq", "12"]["n"] == "0"


# ----------------------------------------------------------------------------- panel kind
def test_every_panel_has_the_kind_its_page_needs():
    kinds = {name: panel.kind for name, panel in PANELS.items()}
    assert {n for n, k in kinds.items() if k is PanelKind.COMPLEXITY} == {"fig4c", "fig6b"}
    assert {n for n, k in kinds.items() if k is PanelKind.TOY} == {"fig2a", "fig2b", "fig3_64", "fig3_128", "fig3_256"}
    assert {n for n, k in kinds.items() if k is PanelKind.MEASURED} == {"fig4a", "fig4b", "fig5", "fig6a"}


def test_a_panel_kind_is_checked_when_the_panel_is_made():
    with pytest.raises(TypeError, match="kind 'toy' is not a PanelKind"):
        Panel("fig2b", kind="toy")
    with pytest.raises(ValueError, match="complexity panel is counted"):
        Panel("fig4c", ("fig4",), kind=PanelKind.COMPLEXITY)
    with pytest.raises(ValueError, match="complexity panel is counted"):
        Panel("fig4c", points=toy_points("fig4c"), kind=PanelKind.COMPLEXITY)


@pytest.mark.parametrize("kind", [PanelKind.TOY, PanelKind.MEASURED])
def test_the_panel_kind_not_its_points_function_decides_the_toy_columns(tmp_path, kind):
    """The same toy points: the scale-free columns and the dB differences only on a TOY panel."""
    panel = Panel("fig2b", ("fig2b",), points=toy_points("fig2b"), unit="MSE", kind=kind)
    data = collect(panel, toy_sweep(tmp_path))
    toy_columns = {"ours_mse_rel", "paper_mse_rel", "ours_rd_gap_db", "paper_rd_gap_db"}
    assert (toy_columns <= set(table_columns(data))) is (kind is PanelKind.TOY)
    columns, rows = table(data)
    assert len(set(columns)) == len(columns) and all(len(r) == len(columns) for r in rows)
    fig = draw(data, panel)
    try:
        assert fig.axes[1].get_ylabel() == ("ours / paper (dB)" if kind is PanelKind.TOY else "ours − paper")
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- complexity rows
def test_complexity_rows_are_named_and_their_names_are_the_columns(tmp_path):
    panel = PANELS["fig6b"]
    rows = complexity_rows(panel)
    ref = figure("fig6b")
    assert len(rows) == 3 * len(ref.x) and all(isinstance(r, ComplexityRow) for r in rows)
    for r in rows:
        published = ref.series[r.method].mean[ref.x.index(r.bits)]
        assert r.published_log10_wmops == published
        assert r.paper_convention_minus_published == pytest.approx(r.paper_convention_log10_wmops - published)
    assert write_figure(panel, scan_runs([tmp_path]), tmp_path / "out")["missing"] == 0
    header = (tmp_path / "out" / "fig6b.csv").read_text().splitlines()[0]
    assert header.split(",") == list(ComplexityRow._fields)


def test_the_complexity_plot_reads_each_series_by_name():
    panel = PANELS["fig4c"]
    rows = complexity_rows(panel)
    fig = draw_complexity(panel, rows)
    try:
        top, bottom = fig.axes
        lines = {line.get_label(): line for line in top.lines}
        avq = [r for r in rows if r.method == "avq"]
        assert list(lines["avq published"].get_ydata()) == [r.published_log10_wmops for r in avq]
        assert list(lines["avq ours"].get_ydata()) == [r.ours_log10_wmops for r in avq]
        assert list(lines["avq paper convention"].get_ydata()) == [r.paper_convention_log10_wmops for r in avq]
        assert list(bottom.lines[0].get_ydata()) == pytest.approx([r.paper_convention_minus_published for r in avq])
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- the 40-bit study's optimizers
def test_the_high_rate_study_fills_each_method_by_its_optimizer():
    def row(q, opt, steps, fresh="True", dim=64):
        return {"dataset.dim": str(dim), "quantizer.name": q, "optimizer.name": opt, "optimizer.steps": str(steps),
                "dataset.fresh_batches": fresh, "n": "3"}

    rows = [row("pvq", "nsvq", 500), row("pvq", "nsvq", 8000), row("pvq", "nsvq", 100, fresh="False"),
            row("pvq", "kmeans", 25), row("rvq", "nsvq", 500), row("rvq", "adam", 10), row("avq", "ste", 10),
            row("pvq", "kmeans", 25, dim=128)]
    study = _study(rows, 64, "uncorrelated")
    assert study["pvq"] == {"quick": rows[0], "long": rows[1], "lloyd": rows[3]}
    assert study["rvq"] == {"quick": rows[4]}  # one length only: no 'long'; adam's row is not shown
    assert study["avq"] == {}  # a method the study ran with another optimizer only: no rows


# ----------------------------------------------------------------------------- layout
def _report_contract():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c.get("containers") == ["vqbench.report"])


def test_every_report_module_has_a_layer_in_the_import_contract():
    layered = {m.strip() for layer in _report_contract()["layers"] for m in layer.split("|")}
    modules = {p.stem for p in REPORT.glob("*.py")} - {"__init__"}
    assert layered == modules


def test_report_modules_and_functions_stay_small():
    for path in REPORT.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 300, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno < 60, f"{path.name}: {node.name}"


def test_a_toy_row_in_scale_free_forms():
    """The published point read through the figure's unit factor and set against our R-D bound."""
    from vqbench.paper.conventions import scale_fit
    from vqbench.report.toy_columns import toy_columns

    scale = scale_fit("fig2b").scale
    row = Row("pvq", 40, values=[1.0], seeds=[0], paper=(2.0 * scale, None, None),
              extras={"mse_rel": [0.5], "rd_gap_db": [1.0], "rd_bound_mse": [12.8], "data_variance": [64.0]})
    cols = toy_columns(row, "fig2b")
    assert cols["ours_mse_rel"] == 0.5 and cols["ours_rd_gap_db"] == 1.0
    assert cols["paper_mse_rel"] == pytest.approx(2.0)
    assert cols["paper_rd_gap_db"] == pytest.approx(10.0)  # 2.0 x 64 = 128 = 10 x the bound
    unpublished = toy_columns(Row("pvq", 40, values=[1.0], seeds=[0], extras={"mse_rel": [0.5]}), "fig2b")
    assert unpublished["ours_mse_rel"] == 0.5 and math.isnan(unpublished["paper_mse_rel"])
    assert math.isnan(unpublished["paper_rd_gap_db"])


def test_fig4c_counts_the_published_search_beside_the_textbook_one():
    from vqbench.metrics.complexity import encode_wmops
    from vqbench.quantizers import AVQ

    rows = complexity_rows(PANELS["fig4c"])
    by = {(r.method, r.bits): r for r in rows}
    ref = figure("fig4c")
    assert {r.method for r in rows} == {"avq_authors", "avq", "rvq", "pvq"}
    assert len(rows) == 4 * len(ref.x)
    for bits in ref.x:
        authors, textbook = by[("avq_authors", bits)], by[("avq", bits)]
        assert authors.series == textbook.series == "avq"
        assert authors.published_log10_wmops == textbook.published_log10_wmops == ref.series["avq"].mean[
            ref.x.index(bits)]
        q = AVQ(64, 4, bits // 4, beam_width=16, search="authors")
        assert authors.ours_log10_wmops == pytest.approx(math.log10(encode_wmops(q)))
        assert authors.ours_log10_wmops != textbook.ours_log10_wmops
    fig = draw_complexity(PANELS["fig4c"], rows)
    try:
        labels = [line.get_label() for line in fig.axes[0].lines]
        assert "avq_authors ours" in labels and "avq_authors published" not in labels  # the series' lines once
    finally:
        plt.close(fig)


def test_a_complexity_panel_beside_an_unknown_method_says_so():
    import dataclasses

    panel = dataclasses.replace(PANELS["fig4c"], compare={"avq": "avq_nonesuch"})
    with pytest.raises(ValueError, match="'avq_nonesuch' .* is not a quantizer option"):
        complexity_rows(panel)
