"""Resumable campaigns: a sweep rerun with resume=true into its own directory skips the jobs that
finished (same resolved config) and reruns the others; the report keeps one attempt per job
(newest finished wins). The end-to-end test kills a real sweep with SIGKILL and finishes it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vqbench.common.provenance import RESULTS_VERSION
from vqbench.paper.conventions import to_paper_units
from vqbench.report.cli import main as report_main
from vqbench.report.figure_page import collect
from vqbench.report.panels import panels
from vqbench.run.attempts import SUPERSEDED_FILE, finished_record, job_key
from vqbench.run.runs import scan_runs

# Six quick toy jobs (~1 s each): 3 rates x 2 seeds, NSVQ on 16 dims.
TOY = ["dataset.num_train=2048", "dataset.num_test=512", "dataset.dim=16", "progress=false", "quantizer=rvq",
       "optimizer.steps=150", "optimizer.batch_size=256"]
GRID = ["quantizer.bits_per_codebook=2,3,4", "seed=0,1"]


def vqbench_cmd(*args):
    return [sys.executable, "-m", "vqbench", *args]


def run_vqbench(*args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run(vqbench_cmd(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


# ----------------------------------------------------------------------- which record is a job's
DATA = {"base": {"path": "/data/a_base.fvecs", "bytes": 12, "sha256": "aa"}}


def record(config, mse=1.0, finished="2026-01-01T00:00:00+00:00", data=DATA, results_version=RESULTS_VERSION,
           **metrics):
    return {"config": config, "metrics": {"mse": mse, **metrics}, "timings": {"total": 1.0}, "environment": {},
            "code": {"commit": "0" * 40, "dirty": False, "results_version": results_version}, "data": data,
            "finished_at": finished}


CFG = {"seed": 0, "resume": False, "progress": True, "quantizer": {"name": "rvq", "bits_per_codebook": 3}}


def write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_finished_record_compares_the_resolved_config(tmp_path):
    write(tmp_path / "metrics.json", record(CFG))
    assert finished_record(tmp_path, CFG, DATA)["metrics"]["mse"] == 1.0
    # resume/progress do not change a result: the resumed campaign sets them differently
    assert finished_record(tmp_path, {**CFG, "resume": True, "progress": False}, DATA) is not None
    assert finished_record(tmp_path, {**CFG, "seed": 1}, DATA) is None
    assert finished_record(tmp_path, {**CFG, "quantizer": {"name": "rvq", "bits_per_codebook": 4}}, DATA) is None
    assert job_key(CFG) == job_key({**CFG, "resume": True}) != job_key({**CFG, "seed": 1})


@pytest.mark.parametrize("free", [{"threads": 1}, {"tags": {"note": "x"}}, {"device": "cpu"},
                                  {"dataset": {"name": "sift1m", "root": "/elsewhere", "cache_dir": "/c"}}])
def test_settings_that_never_change_a_result_do_not_defeat_resume(tmp_path, free):
    """threads, tags, the device and where the data lie are not part of a job (the data's checksums are)."""
    base = {**CFG, "dataset": {"name": "sift1m", "root": "/data", "cache_dir": None}}
    write(tmp_path / "metrics.json", record(base))
    changed = {**base, **free}
    if "dataset" in free:
        changed["dataset"] = {**base["dataset"], **free["dataset"]}
    assert finished_record(tmp_path, changed, DATA) is not None
    assert finished_record(tmp_path, {**changed, "dataset": {**changed["dataset"], "name": "sift1m_hdf5"}}, DATA) is None


def test_other_data_or_another_results_version_is_another_job(tmp_path):
    write(tmp_path / "metrics.json", record(CFG))
    other = {"base": {**DATA["base"], "sha256": "bb"}}
    assert finished_record(tmp_path, CFG, other) is None  # same path, other bytes
    assert finished_record(tmp_path, CFG, {**DATA, "learn": DATA["base"]}) is None  # one more file read
    assert finished_record(tmp_path, CFG, None) is None  # the data cannot be read now: run it
    moved = {"base": {**DATA["base"], "path": "/mnt/copy/a_base.fvecs"}}
    assert finished_record(tmp_path, CFG, moved) is not None  # the same bytes elsewhere
    write(tmp_path / "metrics.json", record(CFG, results_version=RESULTS_VERSION - 1))
    assert finished_record(tmp_path, CFG, DATA) is None
    unrecorded = record(CFG)
    del unrecorded["code"]
    write(tmp_path / "metrics.json", unrecorded)
    assert finished_record(tmp_path, CFG, DATA) is None


@pytest.mark.parametrize("content", ["{not json", json.dumps({"config": CFG}), json.dumps([1, 2]),
                                     '{"config": ' + json.dumps(CFG) + ', "metrics": {"mse": NaN}}'])
def test_a_broken_metrics_file_is_not_a_finished_run(tmp_path, content):
    write(tmp_path / "metrics.json", content)
    assert finished_record(tmp_path, CFG, DATA) is None
    assert finished_record(tmp_path / "absent", CFG, DATA) is None


def test_a_rerun_directory_counts_its_final_attempt(tmp_path):
    """metrics.json and failed.json in one directory: the newer one is the job's outcome."""
    late_failure, late_success = tmp_path / "a", tmp_path / "b"
    write(late_failure / "metrics.json", record(CFG, finished="2026-01-01T00:00:00+00:00"))
    write(late_failure / "failed.json", {"config": CFG, "error": "RunFailed: later", "overrides": [],
                                         "finished_at": "2026-01-02T00:00:00+00:00"})
    cfg2 = {**CFG, "seed": 2}
    write(late_success / "metrics.json", record(cfg2, finished="2026-01-03T00:00:00+00:00"))
    write(late_success / "failed.json", {"config": cfg2, "error": "RunFailed: earlier", "overrides": [],
                                         "finished_at": "2026-01-02T00:00:00+00:00"})
    runs = scan_runs([tmp_path])
    assert [r["path"] for r in runs.finished] == [str(late_success)]
    assert [(f["path"], f["error"]) for f in runs.failed] == [(str(late_failure), "RunFailed: later")]
    assert sorted((s["path"], s["kind"]) for s in runs.superseded) == [(str(late_failure), "finished"),
                                                                      (str(late_success), "failed")]


def test_one_job_in_two_sweep_directories_counts_once_newest_wins(tmp_path):
    """The directory names sort the other way round from the finishing times: the newest
    finished record must win (the older rule, last path wins, kept the older run)."""
    write(tmp_path / "z-first" / "0" / "metrics.json", record(CFG, mse=5.0, finished="2026-01-01T00:00:00+00:00"))
    write(tmp_path / "a-second" / "0" / "metrics.json", record(CFG, mse=7.0, finished="2026-01-05T00:00:00+00:00"))
    runs = scan_runs([tmp_path])
    assert [r["metrics"]["mse"] for r in runs.finished] == [7.0]
    assert runs.superseded == [{"path": str(tmp_path / "z-first" / "0"), "by": str(tmp_path / "a-second" / "0"),
                                "kind": "finished"}]
    # a failure older than a finished run of the same job is over
    write(tmp_path / "m" / "0" / "failed.json", {"config": CFG, "error": "x", "overrides": [],
                                                 "finished_at": "2026-01-02T00:00:00+00:00"})
    assert scan_runs([tmp_path]).failed == []


def test_records_without_a_finishing_time_fall_back_to_the_file_time(tmp_path):
    old = write(tmp_path / "b" / "metrics.json", {k: v for k, v in record(CFG, mse=5.0).items() if k != "finished_at"})
    new = write(tmp_path / "a" / "metrics.json", {k: v for k, v in record(CFG, mse=7.0).items() if k != "finished_at"})
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    assert [r["metrics"]["mse"] for r in scan_runs([tmp_path]).finished] == [7.0]


def fig2b_run(path, seed, mse, finished, note):
    """A Fig. 2b point; `note` (a learning rate) makes the configs differ so both reach the figure
    (a tag would not: tags never change a result, so two runs differing in one are one job)."""
    cfg = {"experiment": {"name": "toy"}, "dataset": {"name": "toy", "kind": "uncorrelated", "dim": 64},
           "quantizer": {"name": "rvq", "num_codebooks": 4, "bits_per_codebook": 3}, "optimizer": {"name": "nsvq", "lr": {"old": 0.1, "new": 0.2}[note]},
           "paper": {"figure": "fig2b", "mode": "quick"}, "seed": seed}
    metrics = {"bits": 12.0, "mse": mse, "rd_gap_db": 1.0, "rd_bound_mse": mse / 1.2589, "data_variance": 64.0,
               "usage_mean": 1.0}
    write(path / "metrics.json", {**record(cfg, finished=finished), "metrics": metrics})


def test_figure_keeps_the_newest_of_two_runs_with_one_seed(tmp_path):
    fig2b_run(tmp_path / "sweep-b" / "0", 0, 50.0, "2026-01-01T00:00:00+00:00", "old")
    fig2b_run(tmp_path / "sweep-a" / "0", 0, 40.0, "2026-02-01T00:00:00+00:00", "new")
    fig2b_run(tmp_path / "sweep-a" / "1", 1, 42.0, "2026-02-01T00:00:00+00:00", "new")
    data = collect(panels(["fig2b"])[0], scan_runs([tmp_path]))
    row = next(r for r in data.rows if r.method == "rvq" and r.x == 12.0)
    assert sorted(zip(row.seeds, row.values)) == [(0, to_paper_units(40.0, 64.0, "fig2b")),
                                                  (1, to_paper_units(42.0, 64.0, "fig2b"))]
    assert data.duplicates == 1


def test_figure_page_counts_each_job_once(tmp_path):
    cfg = {"experiment": {"name": "toy"}, "dataset": {"name": "toy", "kind": "uncorrelated", "dim": 64},
           "quantizer": {"name": "rvq", "num_codebooks": 4, "bits_per_codebook": 3}, "optimizer": {"name": "nsvq"},
           "paper": {"figure": "fig2b", "mode": "quick"}, "seed": 0}
    metrics = {"bits": 12.0, "mse": 40.0, "rd_gap_db": 1.0, "rd_bound_mse": 30.0, "data_variance": 64.0}
    for name, stamp, mse in (("s1", "2026-01-01T00:00:00+00:00", 60.0), ("s2", "2026-01-02T00:00:00+00:00", 40.0)):
        write(tmp_path / name / "0" / "metrics.json", {**record(cfg, finished=stamp), "metrics": {**metrics, "mse": mse}})
    out = tmp_path / "pages"
    assert report_main([str(tmp_path / "s1"), str(tmp_path / "s2"), "--figure", "fig2b", "--out", str(out)]) == 0
    rows = [ln for ln in (out / "fig2b.csv").read_text().splitlines() if ln.startswith("rvq,12,")]
    n, seeds, mean = rows[0].split(",")[2:5]
    assert len(rows) == 1 and (n, seeds) == ("1", "0")
    assert float(mean) == pytest.approx(to_paper_units(40.0, 64.0, "fig2b"))  # the newer run's 40, not 60
    assert "1 older attempts of these jobs" in (out / "fig2b.md").read_text()


# ----------------------------------------------------------------------- end to end
def test_a_killed_sweep_finishes_on_rerun_without_redoing_finished_jobs(tmp_path, capsys):
    """SIGKILL a 6-job sweep once its 2nd job's metrics.json exists; rerun the same command with
    resume=true: jobs 0-1 untouched (same inode and mtime), the rest finish, one run per job."""
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, *GRID, f"hydra.sweep.dir={sweep}", "resume=true"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.Popen(vqbench_cmd(*args), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        # after the 2nd job's metrics.json appears, once the 3rd job has begun (holds its directory's lock)
        for marker in (sweep / "1" / "metrics.json", sweep / "2" / ".vqbench.lock"):
            while not marker.exists():
                assert proc.poll() is None, "the sweep ended before it could be killed"
                assert time.monotonic() < deadline, f"{marker} never appeared"
                time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert done == ["0", "1"]  # a job is ~1 s: the kill came long before the 3rd finished
    assert (sweep / "2" / ".hydra").is_dir() and (sweep / "2" / ".vqbench.lock").exists()  # killed mid-job
    assert len(scan_runs([sweep]).incomplete) == 1
    before = {n: identity(sweep / n / "metrics.json") for n in done}

    res = run_vqbench(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    for n in done:
        assert identity(sweep / n / "metrics.json") == before[n], f"job {n} was run again"
        assert f"job {n} skipped" in res.stdout
    assert "6 of 6 jobs finished (2 skipped as finished before, 4 run)" in res.stderr
    runs = scan_runs([sweep])
    assert len(runs.finished) == 6 and not runs.failed and not runs.incomplete and not runs.superseded
    combos = sorted((r["quantizer"]["bits_per_codebook"], r["seed"]) for r in runs.finished)
    assert combos == [(b, s) for b in (2, 3, 4) for s in (0, 1)]
    out = tmp_path / "table"
    assert report_main([str(sweep), "--out", str(out), "--columns", "quantizer.bits_per_codebook", "seed",
                        "metrics.mse"]) == 0
    assert "(6 rows, 6 runs)" in capsys.readouterr().out


def test_resume_reruns_failed_changed_and_broken_jobs_through_joblib(tmp_path):
    """Of four finished jobs, one turned into a failure, one with a broken metrics.json and one
    recorded for another config run again under resume=true through the joblib launcher (jobs in
    other processes); the untouched one is skipped. Without resume=true every job runs again."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, "optimizer.steps=20", "quantizer.bits_per_codebook=2,3", "seed=0,1",
            f"hydra.sweep.dir={sweep}"]
    first = run_vqbench(*args, cwd=tmp_path)  # the basic launcher; the launcher is not part of a job's config
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == ["0", "1", "2", "3"]
    kept = identity(sweep / "0" / "metrics.json")
    failed = json.loads((sweep / "1" / "metrics.json").read_text())
    (sweep / "1" / "metrics.json").unlink()
    write(sweep / "1" / "failed.json", {"config": failed["config"], "error": "RunFailed: disk full", "overrides": []})
    write(sweep / "2" / "metrics.json", "{cut short")
    other = json.loads((sweep / "3" / "metrics.json").read_text())
    other["config"]["optimizer"]["steps"] = 999
    write(sweep / "3" / "metrics.json", other)

    res = run_vqbench(*args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "resume=true", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "4 of 4 jobs finished (1 skipped as finished before, 3 run)" in res.stderr
    assert identity(sweep / "0" / "metrics.json") == kept
    assert not (sweep / "1" / "failed.json").exists()
    assert json.loads((sweep / "3" / SUPERSEDED_FILE).read_text())["config"]["optimizer"]["steps"] == 999
    runs = scan_runs([sweep])
    assert len(runs.finished) == 4 and not runs.failed
    assert {r["optimizer"]["steps"] for r in runs.finished} == {20}
    rerun = [r for r in runs.finished if r["path"] != str(sweep / "0")]
    assert {r["environment"]["torch_threads"] for r in rerun} == {1}  # OMP_NUM_THREADS=1 beats cores/n_jobs

    again = run_vqbench(*args, cwd=tmp_path)  # no resume: a deliberate rerun of everything
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(0 skipped as finished before, 4 run)" in again.stderr
    assert identity(sweep / "0" / "metrics.json") != kept
