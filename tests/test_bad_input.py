"""Bad input, one test per failure mode: the exit status, a one-line message that names the
culprit (file, row, key or value), and no partial result in the run directory.

Runs go through `cli.execute` in-process (the exit status the `vqbench` command returns);
subprocesses only where Hydra's own behaviour or a second process matters (the run-dir lock,
`.hydra/` restore). Downloads have their own bad-input cases in test_download.py.
"""

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from ann_data import make_hdf5, make_texmex
from vqbench import cli, data_cli, rundir
from vqbench.data import cifar
from vqbench.data.download import extract
from vqbench.data.vecs import write_vecs
from vqbench.errors import RunFailed
from vqbench.experiments import vqvae as vqvae_exp
from vqbench.results import write_json_atomic

TOY = ["dataset.num_train=1024", "dataset.num_test=256", "dataset.dim=8", "quantizer.num_codebooks=2",
       "optimizer.iterations=5", "optimizer.batch_size=64", "progress=false", "device=cpu"]
ANN = ["experiment=ann", "quantizer=pvq", "quantizer.num_codebooks=2",
       "quantizer.bits_per_codebook=3", "optimizer=kmeans", "optimizer.iterations=2", "experiment.search_k=20",
       "progress=false", "device=cpu"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def execute(run_dir, *overrides):
    return cli.execute(composed(*overrides), Path(run_dir))


def one_line_error(capsys, *culprits):
    """The captured stderr is exactly one `vqbench: error:` line naming every culprit."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vqbench: error: "), err
    for c in culprits:
        assert str(c) in lines[0], (c, lines[0])
    return lines[0]


def no_results(run_dir):
    """Nothing a reader could take for a result: no metrics, checkpoints, codebooks, temp files."""
    names = {p.name for p in Path(run_dir).rglob("*")} if Path(run_dir).exists() else set()
    assert not names & {"metrics.json", "codebooks.pt", "checkpoint.pt", "history.json", "reconstructions.png"}, names
    assert not [n for n in names if n.endswith(".tmp")], names


def strict_json(path):
    def refuse(name):
        raise ValueError(f"{path}: non-standard JSON constant {name}")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


# ------------------------------------------------------------------ settings (exit 2 before any work)
@pytest.mark.parametrize("overrides, culprit", [
    (["optimizer.lr=inf"], "optimizer.lr must be a finite positive number, got inf"),
    (["optimizer.lr=nan"], "optimizer.lr must be a finite positive number, got nan"),
    (["optimizer.lr=0"], "optimizer.lr must be a finite positive number, got 0"),
    (["seed=-1"], "seed must be >= 0, got -1"),
    (["seed=1.5"], "seed must be an integer, got 1.5"),
    (["progress=maybe"], "progress must be true or false, got 'maybe'"),
    (["resume=2"], "resume must be true or false, got 2"),
    (["optimizer.replacement.noise=-1"], "optimizer.replacement.noise must be a finite number >= 0, got -1"),
    (["optimizer.replacement.noise=nan"], "optimizer.replacement.noise must be a finite number >= 0, got nan"),
    (["optimizer=ste", "optimizer.beta=nan"], "optimizer.beta must be a finite number >= 0, got nan"),
    (["optimizer.replacement.discard_threshold=2"], "optimizer.replacement.discard_threshold must be in [0, 1], got 2"),
    (["optimizer.batch_size=0"], "optimizer.batch_size must be >= 1, got 0"),
    (["quantizer.bits_per_codebook=17"], "quantizer.bits_per_codebook must be in 1..16, got 17"),
    (["+optimizer.momentum=0.9"], "unknown option 'optimizer.momentum'"),
    (["device=tpu"], "device must be auto, cpu or cuda, got 'tpu'"),
    (["dataset.rho=1.0"], "dataset.rho must lie in (-1, 1), got 1.0"),
    (["dataset.num_train=0"], "dataset.num_train must be a positive integer, got 0"),
    (["quantizer=pvq", "quantizer.num_codebooks=3"], "not divisible by quantizer.num_codebooks=3"),
])
def test_bad_setting_is_refused_before_work(tmp_path, capsys, overrides, culprit):
    assert execute(tmp_path / "run", *TOY, *overrides) == 2
    one_line_error(capsys, culprit)
    no_results(tmp_path / "run")


def test_diverged_training_fails_loudly_with_strict_json(tmp_path, capsys):
    # a finite but absurd step size: the codebooks overflow, the metrics are inf/NaN
    assert execute(tmp_path / "run", *TOY, "optimizer.lr=1e30") == 2
    line = one_line_error(capsys, "non-finite metrics (mse", "optimizer.lr", "failed.json")
    assert "metrics.json written" in line
    no_results(tmp_path / "run")
    record = strict_json(tmp_path / "run" / "failed.json")  # NaN/Infinity would not parse
    assert record["metrics"]["mse"] is None and record["metrics"]["bits"] == 8.0
    assert record["error"].startswith("NonFiniteMetrics:")


def test_results_are_strict_json(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), 1.5],
                                            "t": torch.tensor([float("-inf"), 2.0]), "n": np.float32("nan")})
    assert strict_json(tmp_path / "m.json") == {"a": None, "b": [None, 1.5], "t": [None, 2.0], "n": None}


# ------------------------------------------------------------------ ANN data: NaN/Inf, ground truth
@pytest.fixture
def texmex(tmp_path):
    root = tmp_path / "sift"
    data = make_texmex(root, "sift", nb=300, nq=10, nt=200, d=8, k=10)
    return root, data


def test_ann_small_run_works(texmex, tmp_path):
    # the fixture and settings of the cases below make a valid run
    root, _ = texmex
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 0
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.parametrize("split, row, value", [
    ("base", 123, np.nan), ("base", 299, np.inf), ("learn", 7, -np.inf), ("learn", 0, np.nan),
    ("query", 4, np.nan),
])
def test_ann_non_finite_vectors_named_by_file_and_row(texmex, tmp_path, capsys, split, row, value):
    root, data = texmex
    x = data[split].copy()
    x[row] = value if split == "query" else x[row]  # a whole all-NaN query ...
    x[row, 3] = value  # ... or one bad value
    write_vecs(root / f"sift_{split}.fvecs", x)
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 2
    one_line_error(capsys, root / f"sift_{split}.fvecs", f"row {row} holds NaN or Inf")
    no_results(tmp_path / "run")


def test_ann_non_finite_row_outside_the_used_prefix_is_ignored(texmex, tmp_path):
    root, data = texmex
    x = data["learn"].copy()
    x[150] = np.nan
    write_vecs(root / "sift_learn.fvecs", x)
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}", "dataset.max_train=100") == 0


@pytest.mark.parametrize("bad_id", [300, -1, 10**6])
def test_ann_ground_truth_checked_before_training(texmex, tmp_path, capsys, bad_id):
    root, data = texmex
    gt = data["groundtruth"].copy()
    gt[6, 0] = bad_id
    write_vecs(root / "sift_groundtruth.ivecs", gt)
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 2
    one_line_error(capsys, root / "sift_groundtruth.ivecs", f"row 6 names base id {bad_id}", "0..299")
    no_results(tmp_path / "run")  # no codebooks were trained and written


def test_hdf5_nan_and_ground_truth(tmp_path, capsys):
    path = tmp_path / "h" / "sift-128-euclidean.hdf5"
    path.parent.mkdir()
    data = make_hdf5(path, nb=400, nq=10, d=8)
    overrides = [*ANN, "dataset=sift1m_hdf5", f"dataset.root={path.parent}", "dataset.train_size=200"]
    with h5py.File(path, "r+") as f:
        f["train"][17, 2] = np.nan
    assert execute(tmp_path / "r1", *overrides) == 2
    one_line_error(capsys, path, "'train'", "row 17 holds NaN or Inf")
    with h5py.File(path, "r+") as f:
        f["train"][17] = data["train"][17]
        f["neighbors"][3, 0] = 400
    assert execute(tmp_path / "r2", *overrides) == 2
    one_line_error(capsys, path, "'neighbors'", "row 3 names base id 400")
    no_results(tmp_path / "r1")
    no_results(tmp_path / "r2")


def test_not_an_hdf5_file(tmp_path, capsys):
    (tmp_path / "sift-128-euclidean.hdf5").write_bytes(b"<html>404 not found</html>")
    assert execute(tmp_path / "run", *ANN, "dataset=sift1m_hdf5", f"dataset.root={tmp_path}") == 2
    one_line_error(capsys, tmp_path / "sift-128-euclidean.hdf5", "not a readable HDF5 file")


@pytest.mark.parametrize("damage, culprit", [
    ("missing", "missing sift_base.fvecs (or .bvecs)"),
    ("truncated", "truncated file: record 299"),
    ("dimension", "dimension 4 differs from the base's 8"),
])
def test_ann_damaged_files_that_held_up(texmex, tmp_path, capsys, damage, culprit):
    root, data = texmex
    if damage == "missing":
        (root / "sift_base.fvecs").unlink()
    elif damage == "truncated":
        with open(root / "sift_base.fvecs", "r+b") as f:
            f.truncate((root / "sift_base.fvecs").stat().st_size - 5)
    else:
        write_vecs(root / "sift_learn.fvecs", data["learn"][:, :4])
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 2
    one_line_error(capsys, root, culprit)
    no_results(tmp_path / "run")


def test_dataset_root_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert execute(tmp_path / "run", *ANN, f"dataset.root={tmp_path / 'f'}") == 2
    one_line_error(capsys, f"dataset.root={tmp_path / 'f'} is not a directory")


# ------------------------------------------------------------------ permissions (as another user when root)
@contextlib.contextmanager
def as_unprivileged():
    """Permission bits only bind a non-root user: drop the effective uid for the block."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_dir():
    """A directory another user can enter (tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="vqbench-perm-"))
    d.chmod(0o777)
    yield d
    for p in [d, *d.rglob("*")]:
        p.chmod(0o777)
    import shutil
    shutil.rmtree(d)


def _world_readable_texmex(d):
    make_texmex(d / "sift", "sift", nb=300, nq=10, nt=200, d=8, k=10)
    for p in [d / "sift", *(d / "sift").iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    (d / "run").mkdir(mode=0o777)
    (d / "run").chmod(0o777)
    return d / "sift"


def test_unreadable_vector_file(shared_dir, capsys):
    root = _world_readable_texmex(shared_dir)
    (root / "sift_learn.fvecs").chmod(0o000)
    overrides = [*ANN, f"dataset.root={root}"]
    cfg = composed(*overrides)
    with as_unprivileged():
        status = cli.execute(cfg, shared_dir / "run")
    assert status == 2
    one_line_error(capsys, root / "sift_learn.fvecs", "cannot read (Permission denied)")
    no_results(shared_dir / "run")


def test_unreadable_dataset_directory(shared_dir, capsys):
    root = _world_readable_texmex(shared_dir)
    root.chmod(0o000)
    cfg = composed(*ANN, f"dataset.root={root}")
    with as_unprivileged():
        status = cli.execute(cfg, shared_dir / "run")
    assert status == 2
    line = one_line_error(capsys, f"dataset directory {root} cannot be read (Permission denied)")
    assert "missing" not in line  # it does not name a file that is there


def test_data_cli_root_read_only_or_a_file(shared_dir, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert data_cli.main(["download", "sift1m_hdf5", "--root", str(tmp_path / "afile"), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"vqbench-data: error: --root {tmp_path / 'afile'} is a file, not a directory\n"
    ro = shared_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    with as_unprivileged():
        status = data_cli.main(["download", "sift1m", "--root", str(ro / "sub"), "--no-progress"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--root {ro / 'sub'}: cannot create the directory (Permission denied)" in err


def test_data_cli_info_on_a_non_hdf5_file(tmp_path, capsys):
    (tmp_path / "x.hdf5").write_text("not hdf5")
    assert data_cli.main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vqbench-data: error: {tmp_path / 'x.hdf5'}: not a readable HDF5 file") and err.count("\n") == 1


def test_data_cli_info_on_a_missing_directory(tmp_path, capsys):
    assert data_cli.main(["info", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"vqbench-data: error: {tmp_path / 'nope'}: not a directory\n"


# ------------------------------------------------------------------ image data: archives and caches
def _png_tree(root, n_train=8, n_test=4):
    rng = np.random.default_rng(0)
    for i in range(n_train + n_test):
        d = root / ("train" if i < n_train else "test") / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def _tar_gz(src, archive):
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="imgs")
    return archive


def test_truncated_image_archive_is_named(tmp_path, capsys):
    archive = _tar_gz(_png_tree(tmp_path / "imgs"), tmp_path / "imgs.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    assert execute(tmp_path / "run", "experiment=vqvae_quick", "dataset=image_folder", f"dataset.root={archive}",
                   f"dataset.cache_dir={cache}", "progress=false", "device=cpu") == 2
    one_line_error(capsys, f"dataset.root={archive}", "truncated or corrupt archive")
    no_results(tmp_path / "run")
    assert [p.name for p in (cache / "extracted").iterdir()] == []  # no half tree, no temporary left


def test_killed_extraction_leaves_nothing_behind(tmp_path):
    archive = _tar_gz(_png_tree(tmp_path / "imgs"), tmp_path / "imgs.tar.gz")
    cache = tmp_path / "cache"
    # what kill -9 in the middle of the first extraction left: a hidden temporary tree
    stale = cache / "extracted" / f"{cifar.TMP_PREFIX}imgs-123-456.abc"
    (stale / "imgs" / "train").mkdir(parents=True)
    splits = cifar.load_image_folder(archive, cache)
    assert splits.train.shape == (8, 3, 32, 32)
    assert not stale.exists()
    assert [p.name.startswith(".") for p in (cache / "extracted").iterdir()] == [False]
    # same for extract() itself (vqbench-data download sift1m extracts into --root)
    (tmp_path / "out" / ".extract-zzz").mkdir(parents=True)
    extract(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["imgs"]


def test_corrupt_decoded_cache_is_rebuilt(tmp_path):
    tree = _png_tree(tmp_path / "imgs")
    cache = tmp_path / "cache"
    first = cifar.load_image_folder(tree, cache)
    (cached,) = (cache / "decoded").iterdir()
    cached.write_bytes(cached.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match=f"decoded-image cache {cached} is unreadable.*decoding the images again"):
        again = cifar.load_image_folder(tree, cache)
    assert torch.equal(first.train, again.train) and torch.equal(first.test_labels, again.test_labels)
    cifar.load_image_folder(tree, cache)  # rebuilt: read back without a warning
    assert torch.load(cached, weights_only=True)["format"] == cifar.DECODED_FORMAT


def test_undecodable_image_held_up(tmp_path, capsys):
    tree = _png_tree(tmp_path / "imgs")
    bad = tree / "train" / "a" / "1.png"
    bad.write_bytes(b"not a png")
    assert execute(tmp_path / "run", "experiment=vqvae_quick", "dataset=image_folder", f"dataset.root={tree}",
                   f"dataset.cache_dir={tmp_path / 'cache'}", "progress=false", "device=cpu") == 2
    one_line_error(capsys, bad, "cannot decode image")
    no_results(tmp_path / "run")


# ------------------------------------------------------------------ VQ-VAE resume and checkpoints
TINY = {"latent_dim": 8, "hidden_channels": 8, "res_channels": 4, "res_blocks": 0, "downsamples": 2}


def _vqvae_cfg(tmp_path, epochs=1, **dataset):
    return {
        "seed": 0, "device": "cpu", "progress": False, "resume": False,
        "dataset": {"name": "image_folder", "root": str(tmp_path / "imgs"), "max_train": None, "max_test": None,
                    "cache_dir": str(tmp_path / "cache"), **dataset},
        "quantizer": {"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 1},
        "optimizer": {"name": "nsvq", "iterations": 1, "batch_size": 4, "lr": 0.001, "lr_schedule": "cosine",
                      "init": "random", "beta": 0.25, "ema_decay": 0.99, "alternations": 1,
                      "replacement": {"enabled": False, "num_batches": 2, "discard_threshold": 0.01, "noise": 0.01}},
        "experiment": {"name": "vqvae", "epochs": epochs, "eval_batch_size": 4, "eval_untrained": False,
                       "grid_images": 2, "model": dict(TINY)},
    }


@pytest.fixture
def finished_vqvae(tmp_path):
    _png_tree(tmp_path / "imgs")
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
    assert bad.returncode == 2 and "optimizer.lr must be a finite positive number, got nan" in bad.stderr
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
    one_line_error(capsys, "seed must be >= 0, got -3")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "old\n"
