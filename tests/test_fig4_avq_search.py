"""scripts/fig4_avq_search.py: the two AVQ searches paired by seed, against the paper, from records."""

from __future__ import annotations

import json
import math
from pathlib import Path

from script_modules import load_script

avq_search = load_script("fig4_avq_search")


def _record(d: Path, bits: int, seed: int, psnr: float, search: str | None) -> None:
    q = {"name": "avq", "num_codebooks": 4, "bits_per_codebook": bits // 4, "beam_width": 16}
    if search is not None:
        q["search"] = search
    record = {"config": {"seed": seed, "paper": {"figure": "fig4", "mode": "full"}, "quantizer": q,
                         "dataset": {"root": "/x/cifar10-jpg.tar.gz", "genuine_test": "/x/genuine.npz"}},
              "metrics": {"bits": bits, "psnr_pooled_genuine": psnr, "ssim_legacy_genuine": 0.9, "ssim_genuine": 0.85,
                          "train_seconds": 400.0, "epochs": 4},
              "code": {"commit": "0123456789abcdef", "results_version": 1, "dirty": False}}
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(record))


def test_pairs_by_seed_and_measures_against_the_paper(tmp_path):
    _record(tmp_path / "0~1", 12, 0, 24.0, None)  # a record older than the setting: the textbook search
    _record(tmp_path / "24~1", 12, 1, 24.4, "beam")
    _record(tmp_path / "0", 12, 0, 23.5, "authors")
    _record(tmp_path / "3~1", 24, 0, 27.3, None)
    assert avq_search.main([str(tmp_path), "--out", str(tmp_path / "page")]) == 0
    md = (tmp_path / "page.md").read_text()
    columns, rows = avq_search.table(avq_search.read_records([tmp_path]))
    row12 = dict(zip(columns, rows[0]))
    assert row12["seeds_beam"] == 2 and row12["seeds_authors"] == 1 and row12["paired_seeds"] == 1
    assert math.isclose(row12["psnr_beam"], 24.2) and math.isclose(row12["paired_difference"], -0.5)
    assert abs(row12["authors_minus_paper"] - (23.5 - 23.404)) < 1e-3  # the paper's AVQ at 12 bits: 23.404 dB
    assert "12 bits -0.50 dB (1 seed)" in md
    assert "AVQ with the published code's search: 1 of 1 bitrates within 1 dB" in md
    assert "AVQ with the textbook beam search: 1 of 2 bitrates within 1 dB" in md  # 24 bits: 27.30 vs 25.46


def test_no_records_is_an_error(tmp_path, capsys):
    assert avq_search.main([str(tmp_path), "--out", str(tmp_path / "page")]) == 2
    assert "no Fig. 4 AVQ record" in capsys.readouterr().err
