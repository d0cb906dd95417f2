"""scripts/ann_refine_table.py: the per-seed verdicts of issue 25's goal, from rows with known values."""

from __future__ import annotations

from script_modules import load_script

table = load_script("ann_refine_table")


def _rows(seed, refined, lsq, plain=None, train_s=600.0):
    rows = [{"seed": seed, "method": "AVQ W=64 NSVQ + refine 3", "refine": "3 of 3 kept", "mse": refined,
             "train_s": train_s},
            {"seed": seed, "method": "faiss LSQ", "refine": "", "mse": lsq, "train_s": 300.0}]
    if plain is not None:
        rows.append({"seed": seed, "method": "AVQ W=64 NSVQ", "refine": "off", "mse": plain, "train_s": 500.0})
    return rows


def test_verdicts():
    lines = table.verdicts(_rows(0, 90.0, 100.0, plain=95.0) + _rows(1, 101.0, 100.0, train_s=2400.0)
                           + [{"seed": 2, "method": "faiss LSQ", "refine": "", "mse": 100.0, "train_s": 1.0}])
    assert lines[0] == ("- seed 0: MSE 90.0 vs LSQ 100.0 (lower, -10.00%); without refine 95.0; "
                        "training 10.0 min (within 30 min)")
    assert "(**not lower**, +1.00%)" in lines[1] and "40.0 min (**over** 30 min)" in lines[1]
    assert lines[2] == "- seed 2: incomplete (refined AVQ missing, LSQ present)"
    assert "LSQ's MSE is the same at all 3 seeds" in lines[3]
    assert not any("same at all" in line for line in table.verdicts(_rows(0, 90.0, 100.0) + _rows(1, 90.0, 99.0)))
