"""What a figure page says beyond its table: how a toy unit factor was fitted and the 40-bit evidence,
the published band that is a copy (Fig. 5), plot titles naming our data, and runs of another mode
shown beside the main ones without being averaged with them."""

import csv
import json
import math

import matplotlib.pyplot as plt
import pytest
from script_modules import load_script
from test_figures import toy_run

from vqbench.paper.conventions import SCALE_FITS, published_rd_gap_db
from vqbench.paper.reference import FIGURES, copied_bands, figure
from vqbench.report.cli import main as report_main
from vqbench.report.figure_page import collect
from vqbench.report.figure_plot import draw
from vqbench.report.figure_text import dataset_label, plot_title
from vqbench.report.panels import PANELS
from vqbench.run.runs import scan_runs


def gap_run(path, q, bits, seed, gap_db, mode, figure_name="fig2b", dim=64):
    """A finished toy run whose MSE lies `gap_db` above the Gaussian R-D bound of N(0, I_dim)."""
    bound = dim * 2.0 ** (-2.0 * bits / dim)
    rec = toy_run(path, q, bits, seed, bound * 10 ** (gap_db / 10), mode=mode, dim=dim)
    rec["config"]["paper"]["figure"] = figure_name
    rec["metrics"].update(rd_bound_mse=bound, rd_gap_db=gap_db)
    (path / "metrics.json").write_text(json.dumps(rec))


def toy_sweeps(root, gaps=None):
    """quick: 3 seeds of AVQ/RVQ/PVQ at 12 and 40 bits; full: 2 seeds of PVQ at 40 bits."""
    gaps = gaps or {"avq": 0.50, "rvq": 0.85, "pvq": 0.72}
    job = 0
    for q, gap in gaps.items():
        for bits in (12, 40):
            for seed in range(3):
                gap_run(root / "quick" / str(job), q, bits, seed, gap + 0.01 * seed, "quick")
                job += 1
    for seed in range(2):
        gap_run(root / "full" / str(seed), "pvq", 40, seed, 0.70 + 0.01 * seed, "full")
    return root / "quick", root / "full"


# ----------------------------------------------------------------------------- unit factor
@pytest.mark.parametrize("name,fit", [("fig2b", "uncorrelated"), ("fig2a", "correlated")])
def test_toy_page_states_how_its_unit_factor_was_fitted(tmp_path, name, fit):
    quick, _ = toy_sweeps(tmp_path)
    if name == "fig2a":
        for f in quick.glob("*/metrics.json"):
            rec = json.loads(f.read_text())
            rec["config"]["paper"]["figure"] = "fig2a"
            f.write_text(json.dumps(rec))
    out = tmp_path / "out"
    assert report_main([str(quick), "--figure", name, "--out", str(out)]) == 0
    md = (out / f"{name}.md").read_text()
    s = SCALE_FITS[fit]
    assert f"published = {s.scale:g} × (MSE / data variance)" in md
    assert f"over {s.anchors} anchor points" in md and "RVQ and PVQ at 12 and 16 bits" in md
    assert f"single anchors give {s.low:g}–{s.high:g}" in md and s.evidence in md and s.script in md
    assert "So agreement at 12 and 16 bits is partly built in" in md
    # the factor-free check: MSE ratio 40/12 bits, ours vs the R-D bound, from the page's own rows
    if name == "fig2b":
        # ours are a constant gap above the bound at both rates: the ratio equals the bound's
        bound = 2.0 ** (-2.0 * 40 / 64) / 2.0 ** (-2.0 * 12 / 64)
        line = next(x for x in md.splitlines() if x.startswith("| pvq | 40/12 |"))
        ours, paper, rd = (float(v) for v in line.split("|")[3:6])
        assert rd == pytest.approx(bound, rel=1e-3) and ours == pytest.approx(bound, rel=1e-3)
        ref = figure("fig2b").series["pvq"].mean
        assert paper == pytest.approx(ref[-1] / ref[0], rel=1e-3)


def test_toy_page_carries_the_40_bit_evidence_and_says_where_ours_agree_with_lloyd(tmp_path):
    quick, full = toy_sweeps(tmp_path)
    study = tmp_path / "toy_high_rate.csv"
    head = ("dataset.dim,quantizer.name,optimizer.name,dataset.fresh_batches,optimizer.steps,dataset.num_train,"
            "seed values,n,metrics.mse mean,metrics.mse sd,metrics.rd_gap_db mean,metrics.rd_gap_db sd")
    study.write_text("\n".join([
        head,
        "64,pvq,kmeans,False,,262144,0 1 2,3,31.72,0.04,0.714,0.005",
        "64,pvq,nsvq,True,500,32768,0 1 2,3,31.75,0.05,0.718,0.007",
        "64,pvq,nsvq,True,8000,32768,0 1 2,3,31.55,0.05,0.691,0.007",
        "64,pvq,nsvq,False,8000,32768,0 1 2,3,32.16,0.05,0.774,0.007",  # fixed training set: not shown
        "64,rvq,kmeans,False,,262144,0 1 2,3,32.87,0.1,1.200,0.01",  # Lloyd far from ours (0.85 dB)
        "256,pvq,kmeans,False,,262144,0 1 2,3,1.0,0.1,0.300,0.01",  # another dimension: not shown
    ]) + "\n")
    out = tmp_path / "out"
    assert report_main([str(quick), "--beside", str(full), "--figure", "fig2b", "--high-rate", str(study),
                        "--out", str(out)]) == 0
    md = (out / "fig2b.md").read_text()
    published = published_rd_gap_db(figure("fig2b").series["pvq"].mean[-1], "fig2b", [1.0] * 64, 40)
    pvq = next(x for x in md.splitlines() if x.startswith("| pvq | ") and "(8,000, n 3)" in x)
    cells = [c.strip() for c in pvq.split("|")[1:-1]]
    # this page (quick mean gap 0.73), full (0.705, n 2), NSVQ quick, NSVQ long, Lloyd, published
    assert cells[2] == "0.73" and cells[3].endswith("(n 2)") and cells[4] == "0.705"
    assert cells[5:11] == ["31.75 (500, n 3)", "0.718", "31.55 (8,000, n 3)", "0.691", "31.72 (n 3)", "0.714"]
    assert float(cells[12]) == pytest.approx(published, abs=1e-3)
    assert (f"- **PVQ**: ours agree with converged Lloyd (0.71 dB from the bound; this page 0.73 dB, full runs "
            f"0.70 dB, NSVQ long 0.69 dB, NSVQ quick 0.72 dB), the published value does not: {published:.2f} dB, "
            f"{0.714 - published:.2f} dB below Lloyd.") in md
    assert "- **RVQ**: ours do not reach Lloyd (1.20 dB from the bound) within 0.1 dB" in md
    assert "0.774" not in md and "0.300" not in md
    # the default: toy_high_rate.csv beside the pages; a CSV without the study's columns is an error
    (out / "toy_high_rate.csv").write_text(study.read_text())
    assert report_main([str(quick), "--figure", "fig2b", "--out", str(out)]) == 0
    assert "0.691" in (out / "fig2b.md").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset.dim,quantizer.name\n64,pvq\n")
    assert report_main([str(quick), "--figure", "fig2b", "--high-rate", str(bad), "--out", str(out)]) == 2
    assert report_main([str(quick), "--figure", "fig2b", "--high-rate", str(tmp_path / "no.csv"), "--out", str(out)]) == 2


def test_committed_high_rate_study_gives_the_lloyd_comparison(tmp_path):
    """With the real results/paper/toy_high_rate.csv: PVQ and RVQ at 64 dims agree with Lloyd, and the
    published value sits below Lloyd by more than the agreement margin."""
    from pathlib import Path

    quick, _ = toy_sweeps(tmp_path)
    study = Path(__file__).resolve().parents[1] / "results" / "paper" / "toy_high_rate.csv"
    out = tmp_path / "out"
    assert report_main([str(quick), "--figure", "fig2b", "--high-rate", str(study), "--out", str(out)]) == 0
    md = (out / "fig2b.md").read_text()
    for q in ("PVQ", "RVQ"):
        line = next(x for x in md.splitlines() if x.startswith(f"- **{q}**"))
        assert "ours agree with converged Lloyd" in line and "below Lloyd" in line


# ----------------------------------------------------------------------------- Fig. 5's copied band
def ann_run(path, quantizer, optimizer, seed, recalls, root="/data/siftlike1m", max_base=100000):
    path.mkdir(parents=True)
    (path / ".hydra").mkdir()
    record = {
        "config": {"experiment": {"name": "ann"}, "paper": {"figure": "fig5", "mode": "quick"}, "seed": seed,
                   "dataset": {"name": "sift1m", "root": root, "prefix": "siftlike", "max_base": max_base},
                   "quantizer": {"name": quantizer}, "optimizer": {"name": optimizer}},
        "metrics": {"bits": 64.0, **{f"recall@{t}": r for t, r in recalls.items()}},
        "timings": {"total": 1.0}, "environment": {},
    }
    (path / "metrics.json").write_text(json.dumps(record))


def test_the_copied_pvq_band_of_fig5_is_found_in_the_published_data():
    ref = figure("fig5")
    assert ref.series["pvq"].high == ref.series["rvq"].high  # the authors' JSON, as transcribed
    assert copied_bands(ref) == {("pvq", "high"): "rvq"}
    found = {name: copied_bands(f) for name, f in FIGURES.items() if copied_bands(f)}
    assert found == {"fig5": {("pvq", "high"): "rvq"}}


def test_fig5_page_shows_the_copied_band_as_unknown(tmp_path):
    ts = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    job = 0
    for q in ("avq", "rvq", "pvq"):
        for seed in range(2):
            recalls = {t: min(1.0, 0.2 + 0.1 * i) for i, t in enumerate(ts)}
            ann_run(tmp_path / "runs" / str(job), q, "nsvq", seed, recalls)
            job += 1
    out = tmp_path / "out"
    assert report_main([str(tmp_path / "runs"), "--figure", "fig5", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "fig5.csv").read_text().splitlines()))
    ref = figure("fig5")
    for r in rows:
        if r["method"] == "pvq":
            assert r["paper_high"] == "" and float(r["paper_low"]) == ref.series["pvq"].low[ref.x.index(int(r["T"]))]
            assert "paper_high unknown: the published PVQ high band equals RVQ's digit for digit (copied)" in r["flags"]
        elif r["method"] == "rvq":
            assert float(r["paper_high"]) == ref.series["rvq"].high[ref.x.index(int(r["T"]))]
            assert "copied" not in r["flags"]
    md = (out / "fig5.md").read_text()
    assert "The published PVQ high band (paper_high) equals RVQ's value for value" in md
    # the plot shades the AVQ and RVQ published bands, not PVQ's; PVQ's known lower side is a dotted line
    data = collect(PANELS["fig5"], scan_runs([tmp_path / "runs"]))
    fig = draw(data, PANELS["fig5"])
    try:
        top = fig.axes[0]
        shaded = {c.get_label() for c in top.collections}
        assert {"_avq paper band", "_rvq paper band"} <= shaded and "_pvq paper band" not in shaded
        assert "pvq (paper low band; other side unknown)" in {line.get_label() for line in top.lines}
        # titles name our data: a 100k base of siftlike1m, not SIFT1M
        assert top.get_title().splitlines()[1] == "ours: siftlike1m (100k base)"
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- titles
def test_short_data_labels_name_the_data_actually_used():
    sift = {"dataset": {"name": "sift1m", "root": "../shared/data/siftlike1m", "prefix": "siftlike",
                        "max_base": 100000, "max_queries": 2000}}
    assert dataset_label(sift, short=True) == "siftlike1m (100k base)"
    assert dataset_label({"dataset": {"name": "sift1m", "prefix": "sift"}}, short=True) == "SIFT1M"
    jpeg = {"dataset": {"name": "image_folder", "root": "x/cifar10-jpg.tar.gz", "max_train": 10000, "max_test": 1000}}
    assert dataset_label(jpeg, short=True) == "CIFAR-10 JPEG copy (10k train, 1k test)"
    assert dataset_label({"dataset": {"name": "cifar10"}}, short=True) == "CIFAR-10"
    toy = {"dataset": {"name": "toy", "kind": "lowrank", "dim": 64, "rank": 16}}
    assert dataset_label(toy, short=True) == dataset_label(toy) == "toy lowrank Gaussian, 64 dims, rank 16"
    # the page's long label is the same helper's
    assert dataset_label(sift).startswith("siftlike1m (TEXMEX files siftlike_*)")
    assert plot_title("Fig. 4b: PSNR", [jpeg, {"dataset": {"name": "cifar10"}}]) == \
        "Fig. 4b: PSNR (paper)\nours: CIFAR-10; CIFAR-10 JPEG copy (10k train, 1k test)"
    assert plot_title("Fig. 4c", []) == "Fig. 4c"


# ----------------------------------------------------------------------------- another mode beside
def test_full_runs_stand_beside_quick_ones_and_are_never_averaged_with_them(tmp_path):
    quick, full = toy_sweeps(tmp_path)
    out = tmp_path / "out"
    assert report_main([str(quick), "--beside", str(full), "--figure", "fig2b", "--out", str(out)]) == 0
    rows = {(r["method"], int(r["bits"])): r for r in csv.DictReader((out / "fig2b.csv").read_text().splitlines())}
    pvq40 = rows[("pvq", 40)]
    assert pvq40["n"] == "3" and pvq40["full_n"] == "2" and pvq40["full_seeds"] == "0 1"
    assert float(pvq40["full_rd_gap_db"]) == pytest.approx(0.705)
    assert float(pvq40["ours_rd_gap_db"]) == pytest.approx(0.73)  # the quick seeds alone
    bound = 64 * 2.0 ** (-2.0 * 40 / 64)
    full_mean = sum(139.1 * bound * 10 ** (g / 10) / 64 for g in (0.70, 0.71)) / 2
    assert float(pvq40["full_mean"]) == pytest.approx(full_mean)
    assert rows[("avq", 40)]["full_n"] == "0" and rows[("avq", 40)]["full_mean"] == ""
    md = (out / "fig2b.md").read_text()
    assert "Beside ours: 2 finished runs of mode full" in md and "pvq 40 bits (n 2)" in md
    assert "never averaged with the quick runs" in md and "## Settings of the full runs beside them" in md
    # the same mode beside the main runs, or mixed modes beside, is an error
    assert report_main([str(quick), "--beside", str(quick), "--figure", "fig2b", "--out", str(out)]) == 2
    assert report_main([str(full), "--beside", str(quick), str(full), "--figure", "fig2b", "--out", str(out)]) == 2
    # without --beside the page keeps its columns
    assert report_main([str(quick), "--figure", "fig2b", "--out", str(out)]) == 0
    assert "full_n" not in (out / "fig2b.csv").read_text()
    assert not math.isnan(float(rows[("pvq", 12)]["ours_mean"]))


# ----------------------------------------------------------------------------- full beside the committed quick pages
def test_full_protocol_page_stands_full_points_beside_the_committed_quick_pages(tmp_path, capsys):
    script = load_script("toy_full_protocol")
    pages = tmp_path / "pages"
    quick, full = toy_sweeps(tmp_path)
    assert report_main([str(quick), "--figure", "fig2a", "fig2b", "--out", str(pages)]) == 0  # "committed" pages
    out = pages / "toy_full_protocol"
    assert script.main([str(full), "--pages", str(pages), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text().splitlines()))
    assert len(rows) == 1
    r = rows[0]
    page = {(p["method"], p["bits"]): p for p in csv.DictReader((pages / "fig2b.csv").read_text().splitlines())}
    q = page[("pvq", "40")]
    assert (r["figure"], r["method"], r["bits"], r["quick_n"], r["full_n"]) == ("fig2b", "pvq", "40", "3", "2")
    assert float(r["quick_mean"]) == float(q["ours_mean"]) and float(r["full_rd_gap_db"]) == pytest.approx(0.705)
    full_mean = float(r["full_mean"])
    assert float(r["full_minus_quick_db"]) == pytest.approx(10 * math.log10(full_mean / float(q["ours_mean"])))
    assert float(r["quick_gap_closed"]) == pytest.approx(
        (float(q["ours_mean"]) - full_mean) / (float(q["ours_mean"]) - float(q["paper_mean"])))
    md = out.with_suffix(".md").read_text()
    assert "## Planned points without a finished run (22)" in md and "- fig2b pvq 40 bits seed 2" in md
    assert "- fig2b pvq 40 bits seed 0" not in md
    # the regenerated toy pages point to it (fig3_64 reads Fig. 2b's runs)
    assert report_main([str(quick), "--figure", "fig2b", "fig3_64", "fig2a", "--out", str(pages)]) == 0
    for name in ("fig2b", "fig3_64"):
        assert "pvq 40 bits (n 2) in [toy_full_protocol.md](toy_full_protocol.md)" in (pages / f"{name}.md").read_text()
    assert "toy_full_protocol.md" not in (pages / "fig2a.md").read_text()
    # quick runs given as full ones, or no committed page, is one clear error
    assert script.main([str(quick), "--pages", str(pages), "--out", str(out)]) == 2
    assert "this page is for full-mode runs" in capsys.readouterr().err
    assert script.main([str(full), "--pages", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no committed page for fig2b" in capsys.readouterr().err


# ----------------------------------------------------------------------------- Fig. 4 on genuine pixels
def vqvae_run(path, q, bits, seed, psnr, ssim_std, ssim_legacy, genuine=True, commit="a" * 40, version=1):
    cfg = {"experiment": {"name": "vqvae"}, "seed": seed, "paper": {"figure": "fig4", "mode": "full"},
           "quantizer": {"name": q, "num_codebooks": 4, "bits_per_codebook": bits // 4}, "optimizer": {"name": "nsvq"},
           "dataset": {"name": "image_folder", "root": "/d/cifar10-jpg.tar.gz",
                       "genuine_test": "/d/cifar10-genuine-5k.npz" if genuine else None}}
    # `psnr` is the pooled PSNR (Fig. 4b's value); each image's PSNR averages 0.6 dB above it; the
    # run's own (JPEG) test split scores 0.5 dB above the genuine pixels in both conventions
    m = {"bits": float(bits), "psnr": psnr + 1.1, "mse": 10 ** (-(psnr + 0.5) / 10), "ssim": ssim_std + 0.01,
         "ssim_legacy": ssim_legacy + 0.01, "usage_mean": 1.0}
    if genuine:
        m.update(psnr_genuine=psnr + 0.6, mse_genuine=10 ** (-psnr / 10), ssim_genuine=ssim_std,
                 ssim_legacy_genuine=ssim_legacy)
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({
        "config": cfg, "metrics": m, "timings": {"total": 100.0 + bits}, "environment": {},
        "code": {"commit": commit, "dirty": False, "results_version": version}, "data": {},
        "finished_at": "2026-12-01T00:00:00+00:00"}))


def test_fig4_pages_score_genuine_pixels_and_show_both_ssim_conventions(tmp_path):
    ref_p, ref_s = figure("fig4b"), figure("fig4a")
    job = 0
    for q in ("avq", "rvq", "pvq"):
        for i, bits in enumerate((12, 40)):
            k = ref_p.x.index(bits)
            for seed in range(3):  # PSNR 0.2 dB above the paper; legacy SSIM its curve + 0.01, standard - 0.05
                vqvae_run(tmp_path / "sweep" / str(job), q, bits, seed, ref_p.series[q].mean[k] + 0.2,
                          ref_s.series[q].mean[k] - 0.05, ref_s.series[q].mean[k] + 0.01)
                job += 1
    out = tmp_path / "out"
    assert report_main([str(tmp_path / "sweep"), "--figure", "fig4a", "fig4b", "--out", str(out)]) == 0
    rows_b = {(r["method"], r["bits"]): r for r in csv.DictReader((out / "fig4b.csv").open())}
    assert float(rows_b["rvq", "12"]["ours_minus_paper"]) == pytest.approx(0.2, abs=1e-9)  # genuine, pooled MSE
    assert float(rows_b["rvq", "12"]["ours_per_image_psnr_mean"]) == pytest.approx(ref_p.series["rvq"].mean[0] + 0.8)
    assert float(rows_b["rvq", "12"]["ours_jpeg_test_mean"]) == pytest.approx(ref_p.series["rvq"].mean[0] + 0.7)
    assert float(rows_b["avq", "40"]["wall_s_per_run"]) == pytest.approx(140.0)
    rows_a = {(r["method"], r["bits"]): r for r in csv.DictReader((out / "fig4a.csv").open())}
    assert float(rows_a["pvq", "40"]["ours_minus_paper"]) == pytest.approx(0.01, abs=1e-9)  # legacy convention
    assert float(rows_a["pvq", "40"]["ours_standard_ssim_mean"]) == pytest.approx(ref_s.series["pvq"].mean[-1] - 0.05)
    md_a, md_b = (out / "fig4a.md").read_text(), (out / "fig4b.md").read_text()
    for md in (md_a, md_b):
        assert "`cifar10-genuine-5k.npz` (dataset.genuine_test" in md
        assert "Code versions of these runs: aaaaaaaaaa (results v1): 18 runs." in md and "Warning" not in md
    assert "## SSIM at equal PSNR" in md_a  # the evidence for the convention, computed from the runs
    assert "## PSNR conventions" in md_b  # pooled +0.2 dB at all 6 points, per-image +0.8 dB
    assert "| rvq | 2 | +0.20 (+0.20, +0.20) | 2 of 2 | +0.80 (+0.80, +0.80) | 2 of 2 |" in md_b
    assert "The per-image mean lies 0.60-0.60 dB above the pooled PSNR" in md_b
    assert "missing: no finished run" in md_b  # 16..36 bits were not run here


def test_a_page_warns_when_two_results_versions_mix(tmp_path):
    vqvae_run(tmp_path / "s" / "0", "rvq", 12, 0, 23.5, 0.78, 0.83, version=1)
    vqvae_run(tmp_path / "s" / "1", "rvq", 12, 1, 23.6, 0.78, 0.83, version=2, commit="b" * 40, genuine=False)
    out = tmp_path / "out"
    assert report_main([str(tmp_path / "s"), "--figure", "fig4b", "--out", str(out)]) == 0
    md = (out / "fig4b.md").read_text()
    assert "aaaaaaaaaa (results v1): 1 run; bbbbbbbbbb (results v2): 1 run." in md
    assert "**Warning: these runs come from 2 results versions**" in md
    assert "scored on the run's test split only (no genuine_test)" in md


def test_fig4_calibration_page_names_each_tried_setting_and_its_effect(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "fig4_calibration.py"
    for name, epochs, psnr in (("base", 2, 22.0), ("longer", 4, 23.5)):
        vqvae_run(tmp_path / name, "pvq", 12, 0, psnr, 0.73, 0.80)
        rec = json.loads((tmp_path / name / "metrics.json").read_text())
        rec["config"]["experiment"]["epochs"] = epochs
        rec["metrics"].update(train_seconds=100.0 * epochs, epochs=float(epochs))
        (tmp_path / name / "metrics.json").write_text(json.dumps(rec))
    out = tmp_path / "cal.md"
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "base"), str(tmp_path / "longer"), "--base",
                          "experiment.epochs=2", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    md = out.read_text()
    rows = {r["setting"]: r for r in csv.DictReader(out.with_suffix(".csv").open())}
    assert set(rows) == {"base", "experiment.epochs=4"}
    assert float(rows["experiment.epochs=4"]["psnr_minus_paper"]) == pytest.approx(23.5 - figure("fig4b").series["pvq"].mean[0])
    assert float(rows["base"]["train_s_per_epoch"]) == pytest.approx(100.0)
    assert "- `experiment.epochs=4`: PVQ 12 bits +1.50 dB (genuine PSNR against the base run)." in md
