"""Bad input during a run: VQ-VAE resume (refused, extended), files that cannot be written,
and one live run per run directory (the lock, and `.hydra/` left as it was). Same checks as
test_bad_input.py: exit status, one line naming the culprit, no partial result."""

import contextlib
import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pytest
import torch
from bad_input import TOY, composed, execute, no_results, one_line_error, png_tree

from vqbench.common.errors import RunFailed
from vqbench.data import cifar
from vqbench.experiments import vqvae as vqvae_exp
from vqbench.run import cli, rundir

# ------------------------------------------------------------------ VQ-VAE resume and checkpoints
TINY = {"latent_dim": 8, "hidden_channels": 8, "res_channels": 4, "res_blocks": 0, "downsamples": 2}


def _vqvae_cfg(tmp_path, epochs=1, **dataset):
    return {
        "seed": 0, "device": "cpu", "progress": False, "resume": False,
        "dataset": {"name": "image_folder", "root": str(tmp_path / "imgs"), "max_train": None, "max_test": None,
                    "cache_dir": str(tmp_path / "cache"), "genuine_test": None, **dataset},
        "quantizer": {"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 1},
        "optimizer": {"name": "nsvq", "steps": 1, "batch_size": 4, "lr": 0.001, "lr_schedule": "cosine",
                      "init": "random", "beta": 0.25, "ema_decay": 0.99, "alternations": 1, "noise_scope": "vector",
                      "replacement": {"enabled": False, "num_batches": 2, "discard_threshold": 0.01, "noise": 0.01}},
        "experiment": {"name": "vqvae", "epochs": epochs, "eval_batch_size": 4, "eval_untrained": False,
                       "grid_images": 2, "model": dict(TINY)},
    }


@pytest.fixture
def finished_vqvae(tmp_path):
    png_tree(tmp_path / "imgs")
    cfg = _vqvae_cfg(tmp_path, epochs=1)
    vqvae_exp.run(cfg, tmp_path / "run", torch.device("cpu"))
    return cfg, tmp_path / "run"


def test_finished_vqvae_run_can_be_extended_not_shortened(finished_vqvae, tmp_path):
    cfg, run_dir = finished_vqvae
    more = {**cfg, "resume": True, "experiment": {**cfg["experiment"], "epochs": 3},
            "dataset": {**cfg["dataset"], "cache_dir": str(tmp_path / "moved-cache")}}  # the cache may move
    out = vqvae_exp.run(more, run_dir, torch.device("cpu"))
    assert out["metrics"]["epochs"] == 3 and out["metrics"]["steps"] == 3 * 2
    assert [h["epoch"] for h in json.loads((run_dir / "history.json").read_text())] == [1, 2, 3]
    fewer = {**more, "experiment": {**more["experiment"], "epochs": 2}}
    with pytest.raises(vqvae_exp.ConfigError, match="has trained 3 epochs, more than experiment.epochs=2"):
        vqvae_exp.run(fewer, run_dir, torch.device("cpu"))


def test_refused_resume_fails_before_decoding_and_keeps_the_checkpoint(finished_vqvae, tmp_path):
    cfg, run_dir = finished_vqvae
    before = (run_dir / "checkpoint.pt").read_bytes()
    import shutil
    shutil.rmtree(tmp_path / "imgs")  # a decode would fail on the missing images, not on the mismatch
    other = {**cfg, "resume": True, "optimizer": {**cfg["optimizer"], "lr": 0.5}}
    with pytest.raises(vqvae_exp.ConfigError, match=r"belongs to a different run \(optimizer.lr=0.001 in the checkpoint, 0.5 now\)"):
        vqvae_exp.run(other, run_dir, torch.device("cpu"))
    assert (run_dir / "checkpoint.pt").read_bytes() == before


@contextlib.contextmanager
def file_size_limit(nbytes):
    """A real failed write: the kernel refuses to grow any file past ``nbytes`` (EFBIG, as a
    full disk refuses with ENOSPC). Keep the block short: it binds every file this process writes."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_metrics_write_failure_is_one_line(tmp_path, capsys):
    cfg = composed(*TOY)
    with file_size_limit(1024):  # metrics.json is a few KiB
        status = cli.execute(cfg, tmp_path / "run")
    assert status == 2
    one_line_error(capsys, f"cannot write {tmp_path / 'run' / 'metrics.json'} (OSError: File too large)", "MiB free")
    no_results(tmp_path / "run")


def test_checkpoint_write_failure_is_one_line(finished_vqvae, tmp_path):
    cfg, run_dir = finished_vqvae
    training = vqvae_exp.Training(cfg, cifar.load_images(cfg["dataset"], 0), torch.device("cpu"))
    target = tmp_path / "new" / "checkpoint.pt"
    target.parent.mkdir()
    with file_size_limit(4096), pytest.raises(RunFailed) as err:
        vqvae_exp.save_checkpoint(training, target)
    msg = str(err.value)
    assert msg.startswith(f"cannot write {target} (") and "MiB free" in msg and "\n" not in msg
    assert list(target.parent.iterdir()) == []  # neither the checkpoint nor its temporary file


# ------------------------------------------------------------------ one live run per directory
# What a live vqbench run does to its directory (rundir.acquire), without importing torch.
HOLD = f"""
import fcntl, os, sys, time
os.makedirs(sys.argv[1], exist_ok=True)
fd = os.open(os.path.join(sys.argv[1], {rundir.LOCK_FILE!r}), os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.pwrite(fd, f"{{os.getpid()}}\\n".encode(), 0)
print("locked", flush=True)
time.sleep(60)
"""


@contextlib.contextmanager
def lock_holder(run_dir):
    """Another process that holds the run directory's lock until it is killed (kill -9)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_run_directory_in_use_is_refused_and_free_after_kill(tmp_path, capsys):
    run_dir = tmp_path / "run"
    with lock_holder(run_dir) as proc:
        assert execute(run_dir, *TOY) == 2
        one_line_error(capsys, f"run directory {run_dir} is in use by another vqbench run (pid {proc.pid})")
        no_results(run_dir)
    # killed with SIGKILL: the kernel dropped its lock, nothing is stuck
    assert execute(run_dir, *TOY) == 0
    assert (run_dir / "metrics.json").is_file()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vqbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_refused_runs_leave_hydra_config_as_it_was(tmp_path):
    """End to end through Hydra: neither a busy directory nor a rejected setting rewrites
    .hydra/config.yaml of the run whose results are in the directory."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run_dir / ".hydra" / name).write_text(f"# the earlier run's {name}\n")
    with lock_holder(run_dir):
        busy = _cli(*TOY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    bad = _cli(*TOY, "optimizer.lr=nan", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert busy.returncode == 2 and "is in use by another vqbench run" in busy.stderr
    assert bad.returncode == 2 and "optimizer.lr must be a finite number > 0, got nan" in bad.stderr
    assert "Traceback" not in busy.stderr + bad.stderr
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        assert (run_dir / ".hydra" / name).read_text() == f"# the earlier run's {name}\n"
    no_results(run_dir)


def test_restore_hydra_in_process(tmp_path, capsys):
    # the same mechanism without Hydra's process: snapshot, overwrite (as Hydra does), fail
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("old\n")
    rundir.snapshot_hydra(run_dir)
    (run_dir / ".hydra" / "config.yaml").write_text("rejected\n")
    assert execute(run_dir, *TOY, "seed=-3") == 2
    one_line_error(capsys, "seed must be in 0..9223372036854775807, got -3")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "old\n"


# ------------------------------------------------------------------ the lock, the log, sweep slices
def test_a_full_disk_at_lock_creation_leaves_no_directory(tmp_path, capsys, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.os, "pwrite", full)
    run_dir = tmp_path / "new" / "deeper" / "run"
    with pytest.raises(OSError, match=f"No space left on device: '{run_dir / rundir.LOCK_FILE}'"):
        rundir.acquire(run_dir)
    assert list(tmp_path.iterdir()) == []  # no lock file, no run directory, no new parents
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(SystemExit) as stop:  # as Hydra's callback meets it: one line, exit 2
        rundir._refuse_if_busy(existing, "run directory", "hydra.run.dir")
    assert stop.value.code == 2
    one_line_error(capsys, f"hydra.run.dir={existing}: cannot use it as the run directory (No space left on device")
    assert list(existing.iterdir()) == []  # the directory was there before: it stays, without a lock file
    assert rundir._key(existing) not in rundir._held


def test_a_log_file_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    """cli.log on a full disk (/dev/full: every write fails with ENOSPC): one error line instead
    of a logging traceback per record and exit 0; the results the run wrote stay."""
    run_dir = tmp_path / "run"
    out = _cli(*TOY, f"hydra.run.dir={run_dir}", "hydra.job_logging.handlers.file.filename=/dev/full", cwd=tmp_path)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("vqbench: error: cannot write /dev/full (OSError: No space left on device)")
    assert lines[0].endswith(f"; the run finished, its results are in {run_dir / 'metrics.json'}")
    assert json.loads((run_dir / "metrics.json").read_text())["metrics"]["mse"] > 0


@pytest.mark.parametrize("chunk", ["0/2", "3/2", "a/b", "1/0"])
def test_a_bad_sweep_chunk_is_one_line_and_creates_nothing(tmp_path, capsys, chunk):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*TOY, f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                                       f"hydra.sweeper.chunk={chunk}"], return_hydra_config=True)
    with pytest.raises(SystemExit) as stop:
        rundir.RunDirGuard().on_multirun_start(cfg)
    assert stop.value.code == 2
    one_line_error(capsys, f"hydra.sweeper.chunk must be I/N with 1 <= I <= N (e.g. 2/4), got '{chunk}'")
    assert list(tmp_path.iterdir()) == []  # no sweep directory, no lock


def test_sweep_chunk_end_to_end_and_without_a_sweep(tmp_path):
    bad = _cli("-m", *TOY, f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.chunk=3/2", cwd=tmp_path)
    single = _cli(*TOY, f"hydra.run.dir={tmp_path / 'run'}", "hydra.sweeper.chunk=1/2", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "vqbench: error: hydra.sweeper.chunk must be I/N with 1 <= I <= N (e.g. 2/4), got '3/2'"]
    assert single.returncode == 2 and single.stderr.splitlines() == [
        "vqbench: error: hydra.sweeper.chunk=1/2 slices a sweep and this is a single run: add -m "
        "(vqbench -m ... hydra.sweeper.chunk=1/2) or drop it"]
    assert list(tmp_path.iterdir()) == []
