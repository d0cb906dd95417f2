"""scripts/campaign_status.py: the ledger's jobs rebuilt as the sweep built them, and what is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from script_modules import load_script

ROOT = Path(__file__).resolve().parents[1]
status = load_script("campaign_status")


def _ledger(tmp_path: Path, params: dict, task: list[str], chunk: str | None, records: dict[int, float]) -> Path:
    d = tmp_path / "demo-full"
    d.mkdir()
    sweeper = {"params": params, **({"chunk": chunk} if chunk else {})}
    (d / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": sweeper, "overrides": {"task": task}}}, sort_keys=False))
    for job, seconds in records.items():
        (d / str(job)).mkdir()
        (d / str(job) / "metrics.json").write_text(json.dumps(
            {"config": {}, "metrics": {"mse": 1.0}, "timings": {"total": seconds},
             "code": {"commit": "abcdef0123456789", "dirty": job == 0}}))
    return d


def test_jobs_in_the_sweeps_order_with_a_command_line_sweep_replacing_the_presets():
    # the preset sweeps quantizer over three values; the command narrows it to two (Hydra: the later wins,
    # in the earlier's place); the last key varies fastest
    jobs = status.sweep_jobs({"hydra": {"sweeper": {"params": {"seed": "range(0,2)", "quantizer": "a,b,c"}},
                                        "overrides": {"task": ["+paper=x", "quantizer=c,a"]}}})
    assert jobs == [["seed=0", "quantizer=c", "+paper=x"], ["seed=0", "quantizer=a", "+paper=x"],
                    ["seed=1", "quantizer=c", "+paper=x"], ["seed=1", "quantizer=a", "+paper=x"]]


def test_missing_jobs_their_chunks_and_the_time_left(tmp_path):
    # 2 seeds x 3 methods = 6 jobs in 6 chunks; recorded: seed 0 of every method and seed 1 of 'a'
    d = _ledger(tmp_path, {"seed": "range(0,2)", "m": "a,b,c"}, ["+paper=x"], "2/6",
                {0: 100.0, 1: 200.0, 2: 400.0, 3: 110.0})
    c = status.read_campaign(d)
    assert len(c.jobs) == 6 and c.chunks == 6
    assert c.missing == [4, 5]
    assert [c.chunk_of(k) for k in c.missing] == [5, 6]
    assert c.jobs[4] == ["seed=1", "m=b", "+paper=x"]
    # a missing job takes its own method's recorded seeds: m=b -> 200 s, m=c -> 400 s
    assert c.estimate(4) == 200.0 and c.estimate(5) == 400.0
    assert c.versions == {"abcdef0123 (dirty)": 1, "abcdef0123": 3}
    row = status.table([c]).splitlines()[2]
    assert row == "| demo-full | 4 | 2 | 5-6 (of 6) | 0.2 | 0.2 | abcdef0123: 3, abcdef0123 (dirty): 1 |"


def test_a_job_without_recorded_siblings_takes_the_mean_of_all_records(tmp_path):
    d = _ledger(tmp_path, {"seed": "range(0,2)", "m": "a,b"}, [], None, {0: 100.0, 2: 300.0})
    c = status.read_campaign(d)
    assert c.chunks == 1 and c.missing == [1, 3]
    assert c.estimate(1) == 200.0 and c.estimate(3) == 200.0  # no m=b record: all records' mean
    assert [c.chunk_of(k) for k in c.missing] == [1, 1]


def test_a_record_outside_the_sweep_and_an_unreadable_sweep_file_are_named(tmp_path, capsys):
    d = _ledger(tmp_path, {"seed": "range(0,2)"}, [], None, {0: 1.0, 5: 1.0})
    with pytest.raises(ValueError, match=r"5/metrics.json: job 5 is outside the sweep of 2 jobs"):
        status.read_campaign(d)
    (d / "multirun.yaml").write_text("[not: a mapping")
    assert status.main([str(d)]) == 2
    assert "multirun.yaml: cannot read the sweep's record" in capsys.readouterr().err


def test_ranges():
    assert status.ranges([10, 1, 2, 3, 7, 9]) == "1-3, 7, 9-10"
    assert status.ranges([]) == "" and status.ranges([4]) == "4"


def test_the_committed_ledger_is_consistent_with_its_sweeps():
    """Every committed record is a job of its campaign's sweep (a moved job number would fail here)."""
    dirs = sorted(p.parent for p in (ROOT / "results" / "campaigns").glob("*/multirun.yaml"))
    assert dirs, "no campaign ledger with a multirun.yaml"
    for d in dirs:
        c = status.read_campaign(d)
        assert len(c.seconds) + len(c.missing) == len(c.jobs), d.name
