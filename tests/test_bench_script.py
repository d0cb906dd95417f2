"""scripts/bench.py: ratios and spreads from timings, the page's structure at tiny size, and the
plain references it times against."""

import json
import re

import pytest
import torch
from script_modules import load_script

bench = load_script("bench")
reference = load_script("bench_reference")


def test_spread_of_known_values():
    s = bench.spread([4.0, 1.0, 3.0, 2.0, 5.0])
    assert s == {"n": 5, "median": 3.0, "min": 1.0, "max": 5.0, "q1": 2.0, "q3": 4.0}
    assert bench.spread([2.5]) == {"n": 1, "median": 2.5, "min": 2.5, "max": 2.5, "q1": 2.5, "q3": 2.5}
    with pytest.raises(ValueError):
        bench.spread([])


def test_paired_ratios_are_speed_ratios_per_repeat():
    # reference 10 s and 12 s, ours 2 s and 3 s for the same work: 5x and 4x
    assert bench.paired_ratios([10.0, 12.0], [2.0, 3.0]) == [5.0, 4.0]
    # different work per side: ours 100 steps in 2 s (50/s), reference 10 steps in 1 s (10/s): 5x
    assert bench.paired_ratios([1.0], [2.0], reference_work=10, ours_work=100) == [5.0]
    with pytest.raises(ValueError):
        bench.paired_ratios([1.0], [1.0, 2.0])
    assert bench.ratio_text(bench.spread([5.0, 4.0])) == "4.50x (min-max 4.00-5.00, IQR 4.25-4.75, n=2)"


def test_interleaved_alternates_and_takes_reported_seconds():
    calls = []
    times = bench.interleaved(3, {"a": lambda: calls.append("a") or 1.5, "b": lambda: calls.append("b")})
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert times["a"] == [1.5, 1.5, 1.5] and len(times["b"]) == 3


@pytest.mark.parametrize("name", ["rvq", "pvq", "avq"])
def test_plain_encoders_agree_with_ours(name):
    from vqbench.quantizers import build_quantizer

    g = torch.Generator().manual_seed(0)
    q = build_quantizer({"name": name, "num_codebooks": 3, "bits_per_codebook": 3, "beam_width": 4}, 6)
    q.codebooks.data = torch.randn(q.codebooks.shape, generator=g)
    x = torch.randn(300, 6, generator=g) * 2
    ours = q.encode(x)
    plain = reference.plain_encode(name, x, q.codebooks.detach(), 4)
    if name != "avq":
        assert torch.equal(ours, plain)
    mse = [(x - q.decode(c).detach()).pow(2).sum(1).mean().item() for c in (ours, plain)]
    assert mse[1] == pytest.approx(mse[0], rel=0.05)  # AVQ: the plain beam does not merge reorderings
    torch.testing.assert_close(reference.plain_decode(name, q.codebooks.detach(), plain), q.decode(plain).detach())


def test_tiny_run_writes_a_page_computed_from_its_timings(tmp_path):
    out = tmp_path / "bench.md"
    assert bench.main(["--quick", "--sections", "train,encode,profile", "--threads", "1", "--out", str(out)]) == 0
    text = out.read_text()
    raw = json.loads(out.with_suffix(".json").read_text())
    for heading in ("# vqbench speed: ratios within one run", "## NSVQ training throughput",
                    "## AVQ encode: ours over faiss's RQ beam search", "## Profile", "## Machine"):
        assert heading in text
    assert len(raw["train"]) == 3 and len(raw["encode"]) == 2 and len(raw["profile"]) == 3
    for r in raw["train"] + raw["encode"]:
        work = (1, 1)
        if r["measure"].startswith("train"):
            work = (2, 1) if "AVQ" in r["measure"] else (3, 2)  # --quick: our / plain steps
        ratios = [(work[0] / o) / (work[1] / p) for p, o in zip(r["seconds"]["reference"], r["seconds"]["ours"])]
        assert r["ratios"] == pytest.approx(ratios)
        assert r["ratio"] == bench.spread(ratios)
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {r['measure']} |"))
        assert bench.ratio_text(r["ratio"]) in line
    assert re.search(r"\| train NSVQ AVQ W=16, 1 thread \| .* \| >= 50x \| (yes|\*\*NO\*\*) \|", text)
    for p in raw["profile"]:
        assert sum(ph["share"] for ph in p["phases"]) == pytest.approx(1.0, abs=0.02)
    # the same page again from the raw timings alone, and nothing timed
    again = tmp_path / "again.md"
    assert bench.main(["--page-only", str(out.with_suffix(".json")), "--out", str(again)]) == 0
    assert again.read_text() == text


def test_codewords_scored_by_hand():
    # M=2, K=4, W=16. Ours: 8 at the root, then each of the 8 kept beams scores the 4 codewords of
    # its other codebook: 8 + 32. faiss: codebook 0 (4), then 4 beams x codebook 1 (16).
    assert bench.codewords_scored(2, 4, 16) == (40, 20)
    # M=3, K=4, W=2: ours 12 + 2*2*4 + 2*1*4 = 36; faiss 4 + 2*4 + 2*4 = 20
    assert bench.codewords_scored(3, 4, 2) == (36, 20)
    # the page's setting (M=8, K=256): the union search scores ~4x what RQ's does
    ours, theirs = bench.codewords_scored(8, 256, 16)
    assert (ours, theirs) == (2048 + 16 * 256 * 28, 256 + 7 * 16 * 256)


def test_encode_rows_short_of_the_goal_name_the_search_size():
    row = {"measure": "encode AVQ W=16 vs faiss RQ beam 16, 1 thread", "met": False, "goal": 2.0,
           "ratio": {"median": 1.5}}
    (line,) = bench.bound_lines([row], [], {"enc_M": 8})
    assert "116,736 codewords per vector, faiss 28,928 (4.04x as many" in line
    assert "ours is 6.1x faster" in line  # 1.5 * 116736 / 28928
    assert bench.bound_lines([{**row, "met": True}], [], {"enc_M": 8}) == []


def test_page_only_refuses_a_file_bench_did_not_write(tmp_path):
    raw = tmp_path / "other.json"
    raw.write_text(json.dumps({"train": []}))
    with pytest.raises(SystemExit, match="other.json: no command, compare"):
        bench.main(["--page-only", str(raw)])
    with pytest.raises(SystemExit, match="absent.json: not a readable raw-timings file"):
        bench.main(["--page-only", str(tmp_path / "absent.json")])


def test_encode_profile_merged_into_an_earlier_run(tmp_path):
    out = tmp_path / "bench.md"
    assert bench.main(["--quick", "--sections", "encode", "--threads", "1", "--out", str(out)]) == 0
    raw = out.with_suffix(".json")
    first = json.loads(raw.read_text())
    assert "## Profile: where an AVQ encode" not in out.read_text()
    assert bench.main(["--quick", "--sections", "encode_profile", "--into", str(raw), "--out", str(out)]) == 0
    merged = json.loads(raw.read_text())
    assert merged["encode"] == first["encode"] and merged["command"] == first["command"]  # kept
    assert [a["sections"] for a in merged["added"]] == [["encode_profile"]]
    text = out.read_text()
    assert "Added later (`--into`): `python scripts/bench.py --quick --sections encode_profile" in text
    for p in merged["encode_profile"]:
        assert len(p["kernel_seconds"]) == len(p["seconds"]["ours"]) == 2  # --quick: 2 repeats
        assert all(0 < k <= t for k, t in zip(p["kernel_seconds"], p["seconds"]["ours"]))
        assert p["codewords_scored"] == dict(zip(("ours", "faiss"), bench.codewords_scored(2, 256, p["beam"])))
    rows = [ln for ln in text.splitlines() if re.match(r"\| (16|64) \| [0-9,]+ \|", ln)]
    assert len(rows) == 2
    # short-of-goal encode lines now cite the kernel's share
    assert all("of our encode" in ln for ln in text.splitlines() if ln.startswith("- encode AVQ"))
    # another machine's run is not merged silently
    merged["machine"] = ["- CPU: elsewhere"]
    raw.write_text(json.dumps(merged))
    with pytest.raises(SystemExit, match="on another machine"):
        bench.main(["--quick", "--sections", "encode_profile", "--into", str(raw)])
