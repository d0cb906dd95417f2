"""Fault injection on real file systems: a full disk and a read-only directory, each a small
tmpfs mounted for the test (root only; skipped otherwise). A run, a sweep, the report and the
paper script each end with one error line and a non-zero exit status, and the results already
on the file system stay exactly as they were (nothing new, nothing changed).

The cases without root (a file in the way, mode-0555 directories, /dev/full for the log,
monkeypatched writes) are in test_bad_runs.py, test_report.py and test_reproduce_script.py.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bad_input import TOY

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"),
                                reason="mounts a small tmpfs: needs root on Linux")
LOCK = ".vqbench.lock"  # rewritten with the pid of each run that takes it: not a result


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})})


def vqbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _run(sys.executable, "-m", "vqbench", *args, cwd=cwd)


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _run(sys.executable, "-m", "vqbench.report", *args, cwd=cwd)


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "8m"):
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(fs: Path) -> None:
    """Take every free byte of the file system `fs` (a tmpfs: allocated by page)."""
    with open(fs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    assert shutil.disk_usage(fs).free == 0


def read_only(fs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)


def files(fs: Path) -> dict[str, bytes]:
    """Every file under `fs` (but the filler and lock files) with its contents."""
    return {str(p.relative_to(fs)): p.read_bytes() for p in sorted(fs.rglob("*"))
            if p.is_file() and p.name not in ("filler", LOCK)}


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in done.stderr.splitlines() if ": error: " in ln]


def one_error(done: subprocess.CompletedProcess, prefix: str, *culprits: str) -> str:
    """A non-zero exit, exactly one error line (and no traceback) naming every culprit."""
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = error_lines(done)
    assert len(lines) == 1 and lines[0].startswith(f"{prefix}: error: "), done.stderr
    for c in culprits:
        assert c in lines[0], (c, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A finished run, a finished sweep (resume=true) and report pages, made once; each test
    copies them onto its own tmpfs."""
    base = tmp_path_factory.mktemp("results")
    ran = vqbench(*TOY, f"hydra.run.dir={base / 'run'}", cwd=base)
    swept = vqbench("-m", *TOY, "resume=true", f"hydra.sweep.dir={base / 'sweep'}", cwd=base)
    assert ran.returncode == 0 and swept.returncode == 0, ran.stderr + swept.stderr
    paged = report(str(base / "sweep"), "--figure", "fig4c", "--out", str(base / "pages"), cwd=base)
    assert paged.returncode == 0, paged.stderr
    return base


@pytest.fixture
def fs(tmp_path, results):
    with tmpfs(tmp_path / "fs") as where:
        for name in ("run", "sweep", "pages"):
            shutil.copytree(results / name, where / name, symlinks=True)
        yield where


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_run(fs, fault):
    (fill if fault == "full" else read_only)(fs)
    before = files(fs)
    reason = "No space left on device" if fault == "full" else "Read-only file system"
    new = vqbench(*TOY, f"hydra.run.dir={fs / 'new' / 'run'}", cwd=fs.parent)
    one_error(new, "vqbench", f"hydra.run.dir={fs / 'new' / 'run'}", reason)
    again = vqbench(*TOY, f"hydra.run.dir={fs / 'run'}", cwd=fs.parent)  # into the finished run's directory
    one_error(again, "vqbench", reason)
    assert files(fs) == before and not (fs / "new").exists()


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_sweep(fs, fault):
    (fill if fault == "full" else read_only)(fs)
    before = files(fs)
    reason = "No space left on device" if fault == "full" else "Read-only file system"
    new = vqbench("-m", *TOY, "seed=1,2", f"hydra.sweep.dir={fs / 'new'}", cwd=fs.parent)
    one_error(new, "vqbench", f"hydra.sweep.dir={fs / 'new'}", reason)
    if fault == "read-only":
        again = vqbench("-m", *TOY, "seed=0,1", "resume=true", f"hydra.sweep.dir={fs / 'sweep'}", cwd=fs.parent)
        one_error(again, "vqbench", reason)
    assert files(fs) == before and not (fs / "new").exists()


def test_a_sweep_resumed_on_a_full_disk(fs):
    """Job 0 is finished and skipped, job 1 cannot start: every result and every job's .hydra/
    stays as it was (Hydra rewrites .hydra/*.yaml in place before any callback; vqbench puts the
    earlier bytes back, in place when there is no room for a copy), one error line names the
    job's directory. What a resumed sweep writes on any disk may change, whole: the sweep's
    multirun.yaml (Hydra's record of the latest command) and whole lines appended to cli.log."""
    fill(fs)
    before = files(fs)
    again = vqbench("-m", *TOY, "seed=0,1", "resume=true", f"hydra.sweep.dir={fs / 'sweep'}", cwd=fs.parent)
    line = one_error(again, "vqbench", "No space left on device", str(fs / "sweep" / "1" / ".hydra"))
    assert "hydra.sweep.dir" in line
    after = files(fs)
    assert sorted(after) == sorted(before)
    for name, old in before.items():
        new = after[name]
        if name.endswith("cli.log"):
            assert new.startswith(old) and new.endswith(b"\n"), name
        elif name == "sweep/multirun.yaml":
            assert new == old or "resume=true" in yaml.safe_load(new)["hydra"]["overrides"]["task"], name
        else:
            assert new == old, name


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_the_report(fs, fault):
    (fill if fault == "full" else read_only)(fs)
    before = files(fs)
    culprit = "OSError: No space left on device" if fault == "full" else "read-only file system"
    for args in (["--figure", "fig4c", "--out", str(fs / "pages")], ["--figure", "fig4c", "--out", str(fs / "new")],
                 ["--columns", "quantizer.name", "metrics.mse", "--out", str(fs / "new" / "table")]):
        done = report(str(fs / "sweep"), *args, cwd=fs.parent)
        one_error(done, "vqbench-report", culprit)
    assert files(fs) == before and not (fs / "new").exists()


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_the_paper_script(fs, tmp_path, fault):
    (fill if fault == "full" else read_only)(fs)
    before = files(fs)
    script = ["bash", str(ROOT / "scripts" / "reproduce_paper.sh"), "--quick", "fig2a"]
    if fault == "full":  # the sweeps' root on the full disk: refused before the first job, one line
        done = _run(*script, "--out", str(tmp_path / "pages"), cwd=tmp_path, env={"SWEEPS": str(fs / "sweeps")})
        one_error(done, "vqbench", f"hydra.sweep.dir={fs / 'sweeps'}", "No space left on device")
        assert done.returncode == 2 and not (tmp_path / "pages").exists()
    else:  # the pages' directory read-only: refused before the sweeps
        done = _run(*script, "--out", str(fs / "pages"), cwd=tmp_path, env={"SWEEPS": str(tmp_path / "sweeps")})
        one_error(done, "reproduce_paper.sh", f"--out {fs / 'pages'}", "read-only file system")
        assert done.returncode == 2 and done.stdout == "" and not (tmp_path / "sweeps").exists()
    assert files(fs) == before and not (fs / "sweeps").exists()
