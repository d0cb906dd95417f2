"""scripts/reproduce_paper.sh's arguments (through --dry-run, which prints the commands) and the
sweep slices it relies on (hydra.sweeper.chunk=I/N: the slices of one sweep directory add up to
the whole sweep, job for job)."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vqbench.run.attempts import job_key
from vqbench.run.chunk_sweeper import chunk_indices, parse_chunk
from vqbench.run.runs import scan_runs

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce_paper.sh"
FIGURES = ["fig2a", "fig2b", "fig3", "fig4", "fig5", "fig6"]


def script(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in ("CIFAR10", "SIFT_ROOT", "SIFT_PREFIX", "LAUNCHER",
                                                                 "SWEEPS")}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**full_env, **env})


def commands(res, ledger=False):
    """The printed commands: sweeps and report (`ledger`: only the ledger's restore/save lines)."""
    lines = [shlex.split(line) for line in res.stdout.splitlines() if line.strip()]
    return [c for c in lines if (c[:3] == ["python", "-m", "vqbench.run.ledger"]) == ledger]


def test_help_lists_figures_flags_and_environment():
    for flag in ("--help", "-h"):
        res = script(flag)
        assert res.returncode == 0 and res.stderr == ""
        assert res.stdout.startswith("Usage: bash scripts/reproduce_paper.sh")
        for word in [*FIGURES, "--quick", "--out DIR", "--chunk I/N", "--no-report", "--dry-run", "CIFAR10=",
                     "SIFT_ROOT=", "SIFT_PREFIX=", "LAUNCHER=", "SWEEPS=", "reports/paper", "OMP_NUM_THREADS",
                     "--ledger DIR", "--no-ledger", "--commit", "GENUINE=", "OVERRIDES="]:
            assert word in res.stdout, word


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["fig7"], "unknown argument 'fig7'"),
    (["--out"], "--out needs a directory"),
    (["--chunk"], "--chunk needs I/N"),
    (["--chunk", "0/4"], "got '0/4'"),
    (["--chunk", "5/4"], "got '5/4'"),
    (["--chunk", "two/4"], "got 'two/4'"),
    (["--chunk=3"], "got '3'"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    res = script("--dry-run", *args)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reproduce_paper.sh: error: ") and message in lines[0]


@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_an_out_that_cannot_be_written_stops_before_the_sweeps(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if where == "unwritable" and os.geteuid() == 0:
        pytest.skip("root writes into a mode-0555 directory (test_fault_injection.py covers a read-only mount)")
    out, culprit = {"file": (tmp_path / "afile", f"{tmp_path / 'afile'} is a file, not a directory"),
                    "under-file": (tmp_path / "afile" / "pages", f"{tmp_path / 'afile'} is a file, not a directory"),
                    "unwritable": (locked / "pages", f"cannot create files in {locked} (read-only file system")}[where]
    res = script("--dry-run", "--out", str(out), "fig2a")
    assert res.returncode == 2 and res.stdout == ""  # not one sweep command
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"reproduce_paper.sh: error: --out {out}: {culprit}")
    assert script("--dry-run", "--no-report", "--out", str(out), "fig2a").returncode == 0  # no pages: no check


def test_dry_run_prints_resumable_single_thread_sweeps_and_the_report():
    res = script("--dry-run", "--quick", "--chunk", "2/4", "fig2a", "fig5", SIFT_ROOT="/d/sift", SIFT_PREFIX="siftlike")
    assert res.returncode == 0, res.stderr
    sweep_a, sweep_5, report = commands(res)
    for cmd, fig in ((sweep_a, "fig2a"), (sweep_5, "fig5")):
        assert cmd[:5] == ["env", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1", "NUMBA_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"]
        assert cmd[5:8] == ["vqbench", "-m", f"+paper={fig}_quick"]
        assert "resume=true" in cmd and "hydra.sweeper.chunk=2/4" in cmd
        assert f"hydra.sweep.dir=multirun/paper/{fig}-quick/campaign" in cmd  # fixed: a rerun resumes
    assert "dataset.root=/d/sift" in sweep_5 and "dataset.prefix=siftlike" in sweep_5
    assert report == ["vqbench-report", "multirun/paper/fig2a-quick/campaign", "multirun/paper/fig5-quick/campaign",
                      "--figure", "fig2a", "fig5", "--out", "reports/paper"]
    book = [c[3:] for c in commands(res, ledger=True)]  # restored before each sweep, saved after it
    assert book == [["restore", "results/campaigns/fig2a-quick", "multirun/paper/fig2a-quick/campaign"],
                    ["save", "multirun/paper/fig2a-quick/campaign", "results/campaigns/fig2a-quick"],
                    ["restore", "results/campaigns/fig5-quick", "multirun/paper/fig5-quick/campaign"],
                    ["save", "multirun/paper/fig5-quick/campaign", "results/campaigns/fig5-quick"]]
    assert commands(script("--dry-run", "--no-ledger", "fig2a"), ledger=True) == []


def test_out_chunk_forms_and_defaults():
    res = script("--dry-run", "fig4", "--out=results/paper", "--chunk=08/08", CIFAR10="/c/cifar.tgz", SWEEPS="/s")
    sweep, report = commands(res)
    assert "hydra.sweeper.chunk=8/8" in sweep and "hydra.sweep.dir=/s/fig4-full/campaign" in sweep
    assert sweep[-2:] == ["dataset=image_folder", "dataset.root=/c/cifar.tgz"]
    assert report[-2:] == ["--out", "results/paper"]
    every = commands(script("--dry-run"))
    assert [c[7] for c in every[:-1]] == [f"+paper={f}" for f in FIGURES]  # no figure: all, full mode
    assert not any(a.startswith("hydra.sweeper.chunk") for c in every for a in c)
    assert commands(script("--dry-run", "--no-report", "fig2b"))[-1][5] == "vqbench"


def test_chunk_parsing():
    assert parse_chunk("2/4") == (2, 4) and parse_chunk(" 4 / 4 ") == (4, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "-1/4", None):
        with pytest.raises(Exception, match="hydra.sweeper.chunk must be I/N"):
            parse_chunk(bad)
    slices = [chunk_indices(10, i, 3) for i in (1, 2, 3)]
    assert slices == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert chunk_indices(2, 3, 3) == []


def test_sweep_slices_add_up_to_the_whole_sweep(tmp_path):
    """Slices 1/2 and 2/2 into one directory: the same six job directories, each with the
    config the unsliced sweep gives it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    args = ["-m", "dataset.num_train=1024", "dataset.num_test=256", "dataset.dim=8", "progress=false", "quantizer=pvq",
            "optimizer=kmeans", "optimizer.lloyd_iterations=3", "quantizer.bits_per_codebook=1,2,3", "seed=0,1"]

    def sweep(directory, *extra):
        res = subprocess.run([sys.executable, "-m", "vqbench", *args, f"hydra.sweep.dir={directory}", *extra],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        return res

    first = sweep(tmp_path / "sliced", "hydra.sweeper.chunk=2/2")
    assert sorted(p.parent.name for p in (tmp_path / "sliced").glob("*/metrics.json")) == ["1", "3", "5"]
    assert "3 of 3 jobs finished" in first.stderr
    sweep(tmp_path / "sliced", "hydra.sweeper.chunk=1/2")
    sweep(tmp_path / "whole")

    def jobs(directory):  # job directory -> its recorded config
        return {p.parent.name: job_key(json.loads(p.read_text())["config"]) for p in directory.glob("*/metrics.json")}

    sliced, whole = jobs(tmp_path / "sliced"), jobs(tmp_path / "whole")
    assert sorted(sliced) == ["0", "1", "2", "3", "4", "5"] and len(set(sliced.values())) == 6
    assert sliced == whole
    assert len(scan_runs([tmp_path / "sliced"]).finished) == 6
    res = subprocess.run([sys.executable, "-m", "vqbench", *args, f"hydra.sweep.dir={tmp_path / 'x'}",
                          "hydra.sweeper.chunk=3/2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "hydra.sweeper.chunk must be I/N" in res.stderr and "Traceback" not in res.stderr


def test_a_fresh_clone_skips_every_job_in_the_ledger(tmp_path):
    """The ledger carries a campaign across machines: a chunk run on one machine saves its
    records (with code version and data checksums) into the ledger and commits them; a clone of
    that repository, with no sweep directory at all, restores them and skips every job."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "start"], check=True)
    ledger = repo / "results" / "campaigns"
    tiny = "optimizer.steps=10 dataset.num_train=1024 dataset.num_test=128"

    def chunk(sweeps, ledger_dir, *flags):
        res = subprocess.run(["bash", str(SCRIPT), "--quick", "--chunk", "1/24", "--no-report", "--ledger",
                              str(ledger_dir), *flags, "fig2a"], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "SWEEPS": str(sweeps), "OVERRIDES": tiny, "GIT_AUTHOR_NAME": "t",
                                  "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
        assert res.returncode == 0, res.stderr[-3000:]
        return res

    first = chunk(tmp_path / "machine-a", ledger, "--commit")
    assert "3 of 3 jobs finished (0 skipped as finished before, 3 run)" in first.stderr
    records = sorted((ledger / "fig2a-quick").glob("*/metrics.json"))
    assert [p.parent.name for p in records] == ["0", "24", "48"]
    for p in records:
        rec = json.loads(p.read_text())
        assert rec["code"]["results_version"] >= 1 and "commit" in rec["code"] and rec["data"] == {}
        assert sorted(f.name for f in p.parent.iterdir()) == ["metrics.json"]  # records only
    log = subprocess.run([*git, "log", "--format=%s", "-1"], capture_output=True, text=True, check=True).stdout
    assert log.startswith("ledger: fig2a-quick chunk 1/24, 3 finished jobs recorded")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    again = chunk(tmp_path / "machine-b", clone / "results" / "campaigns")
    assert "3 of 3 jobs finished (3 skipped as finished before, 0 run)" in again.stderr
    for p in records:
        restored = tmp_path / "machine-b" / "fig2a-quick" / "campaign" / p.parent.name / "metrics.json"
        assert restored.read_bytes() == p.read_bytes()


GPU_SCRIPT = ROOT / "scripts" / "gpu_campaign.sh"


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0", "d"], "--jobs needs a positive integer"), (["--figure", "fig9", "d"], "--figure must be"),
    ([], "DATA_DIR is missing"), (["/nonexistent-dir"], "is not a directory"), (["--bogus"], "unknown flag")])
def test_gpu_campaign_bad_arguments_exit_2_with_one_line(args, message):
    res = subprocess.run(["bash", str(GPU_SCRIPT), *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_gpu_campaign_smoke_writes_the_ledger_on_the_cpu(tmp_path):
    """--smoke: the GPU script's whole path (joblib launcher, ledger, pages) at a tiny size on the CPU,
    on a 32x32 image-folder archive and a genuine-pixels npz written here."""
    import tarfile

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    tree = tmp_path / "tree" / "cifar"
    test_images = []
    for split, n in (("train", 160), ("test", 40)):
        for i in range(n):
            d = tree / split / ("a" if i % 2 else "b")
            d.mkdir(parents=True, exist_ok=True)
            a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(a).save(d / f"{i:04d}.png")
            if split == "test":
                test_images.append(a)
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "cifar.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname="cifar")
    np.savez(data / "cifar10-genuine-5k.npz", test_images=np.stack(test_images[:8]))
    env = {**os.environ, "VQBENCH_DATA": str(tmp_path / "cache")}
    res = subprocess.run(["bash", str(GPU_SCRIPT), "--smoke", "--ledger", str(tmp_path / "ledger"), "--sweeps",
                          str(tmp_path / "gpu"), str(data)], capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    records = sorted((tmp_path / "ledger" / "fig4-full").glob("*/metrics.json"))
    assert [p.parent.name for p in records] == ["0", "24", "48"]  # slice 1 of 24: one point, seeds 0-2
    rec = json.loads(records[0].read_text())
    assert rec["metrics"]["genuine_images"] == 8 and rec["config"]["experiment"]["epochs"] == 1
    assert set(rec["data"]) == {"images", "genuine_test"} and rec["code"]["results_version"] >= 1
    assert "gpu_campaign: fig4 on cpu, 2 jobs at once: status 0" in res.stderr
    assert (tmp_path / "gpu" / "pages" / "fig4b.md").is_file()
