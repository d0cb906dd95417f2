"""Bad input, issue 18: the cases that still ended in a traceback (seeds out of range, too
little data for k-means, images the VQ-VAE cannot reproduce, full disks and file-size limits
while writing index.faiss or Hydra's .hydra/, damaged archives and checkpoints, absurd sizes),
the permissions of what a run writes, and what a new user trips on (budget keys in sweeps,
runs that leave nothing behind, the report, `vqbench-data info`, messages naming the right key).
Same checks as test_bad_input.py: exit status, one line naming the culprit, no partial result."""

import gzip
import json
import os
import resource
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from ann_data import make_hdf5, make_texmex
from bad_input import ANN, TOY, execute, no_results, one_line_error, png_tree, tar_gz
from test_bad_runs import _vqvae_cfg, file_size_limit

from vqbench.data import cifar
from vqbench.data import cli as data_cli
from vqbench.data.vecs import write_vecs
from vqbench.experiments import vqvae as vqvae_exp
from vqbench.report import cli as report
from vqbench.run.config import ConfigError

SEED_RANGE = "in 0..9223372036854775807"
QUICK_VQVAE = ["experiment=vqvae_quick", "dataset=image_folder", "progress=false", "device=cpu",
               "experiment.epochs=1", "experiment.eval_untrained=false", "experiment.model.hidden_channels=8",
               "experiment.model.res_channels=4", "experiment.model.latent_dim=8", "experiment.grid_images=2",
               "optimizer.batch_size=4", "quantizer.bits_per_codebook=2"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ 1, 2: seeds
@pytest.mark.parametrize("overrides, culprit", [
    (["dataset.kind=lowrank", "dataset.rank=4", "dataset.mixing_seed=-1"], f"dataset.mixing_seed must be {SEED_RANGE}, got -1"),
    (["seed=1180591620717411303424"], f"seed must be {SEED_RANGE}, got 1180591620717411303424"),  # 2^70
    (["seed=9223372036854775808"], f"seed must be {SEED_RANGE}, got 9223372036854775808"),  # 2^63
])
def test_seed_out_of_range(tmp_path, capsys, overrides, culprit):
    assert execute(tmp_path / "run", *TOY, *overrides) == 2
    one_line_error(capsys, culprit)
    no_results(tmp_path / "run")


def test_largest_seed_runs(tmp_path):
    assert execute(tmp_path / "run", *TOY, f"seed={2**63 - 1}") == 0


def test_hdf5_dataset_seed_out_of_range(tmp_path, capsys):
    path = tmp_path / "h" / "sift-128-euclidean.hdf5"
    path.parent.mkdir()
    make_hdf5(path, nb=400, nq=10, d=8)
    assert execute(tmp_path / "run", *ANN, "dataset=sift1m_hdf5", f"dataset.root={path.parent}",
                   "dataset.train_size=200", "dataset.seed=-1") == 2
    one_line_error(capsys, f"dataset.seed must be {SEED_RANGE} or null, got -1")
    no_results(tmp_path / "run")


# ------------------------------------------------------------------ 3: k-means needs K training vectors
def test_kmeans_too_few_toy_vectors(tmp_path, capsys):
    assert execute(tmp_path / "run", *TOY, "optimizer=kmeans", "dataset.num_train=4") == 2
    one_line_error(capsys, "optimizer=kmeans: dataset.num_train=4 gives 4 training vectors, fewer than the 16 "
                           "centroids of quantizer.bits_per_codebook=4")
    no_results(tmp_path / "run")


def test_kmeans_too_few_learn_rows(tmp_path, capsys):
    root = tmp_path / "sift"
    make_texmex(root, "sift", nb=300, nq=10, nt=3, d=8, k=10)  # 3 learn rows, K = 8
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 2
    one_line_error(capsys, root / "sift_learn.fvecs", "gives 3 training vectors, fewer than the 8 centroids")
    no_results(tmp_path / "run")


# ------------------------------------------------------------------ 4, 5: images the VQ-VAE cannot reproduce
def _odd_images(root, size=30):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(12):
        d = root / ("train" if i < 8 else "test") / "a"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def test_vqvae_image_size_not_divisible(tmp_path, capsys):
    root = _odd_images(tmp_path / "imgs")
    assert execute(tmp_path / "run", *QUICK_VQVAE, f"dataset.root={root}", f"dataset.cache_dir={tmp_path / 'c'}") == 2
    one_line_error(capsys, f"dataset.root={root}", "30x30 images", "experiment.model.downsamples=2",
                   "multiples of 4")
    no_results(tmp_path / "run")  # refused before training: no checkpoint, no history


@pytest.mark.parametrize("dataset", ["cifar10", "image_folder"])
def test_vqvae_too_many_downsamples(tmp_path, capsys, dataset):
    root = png_tree(tmp_path / "imgs")
    data = ["experiment=vqvae", "dataset=cifar10", f"dataset.root={tmp_path / 'none'}", "dataset.download=false"] \
        if dataset == "cifar10" else QUICK_VQVAE + [f"dataset.root={root}", f"dataset.cache_dir={tmp_path / 'c'}"]
    assert execute(tmp_path / "run", *data, "progress=false", "device=cpu", "experiment.model.downsamples=6") == 2
    one_line_error(capsys, "32x32 images", "experiment.model.downsamples=6", "choose downsamples <= 5")
    no_results(tmp_path / "run")


def test_vqvae_downsamples_range(tmp_path, capsys):
    assert execute(tmp_path / "run", *QUICK_VQVAE, f"dataset.root={tmp_path}", "experiment.model.downsamples=40") == 2
    one_line_error(capsys, "experiment.model.downsamples must be in 1..8, got 40")


# ------------------------------------------------------------------ 6: index.faiss on a full disk
def test_index_write_failure_is_one_line(tmp_path, capsys):
    root = tmp_path / "sift"
    make_texmex(root, "sift", nb=12000, nq=5, nt=200, d=8, k=10)  # PQ codes: 12,000 bytes
    run_dir = tmp_path / "run"
    cfg_args = [*ANN, f"dataset.root={root}", "experiment.save_index=true"]
    from bad_input import composed

    from vqbench.run import cli

    cfg = composed(*cfg_args)
    with file_size_limit(8192):  # codebooks.pt is ~1.5 KiB; index.faiss is larger than the limit
        status = cli.execute(cfg, run_dir)
    assert status == 2
    one_line_error(capsys, f"cannot write {run_dir / 'index.faiss'} (RuntimeError", "MiB free")
    no_results(run_dir)
    assert not (run_dir / "index.faiss").exists()


# ------------------------------------------------------------------ 7, 8: Hydra's .hydra/ under a file-size limit
def _limited_cli(*args, cwd, limit=4096):
    """`vqbench` in a child process whose files may not grow past `limit` bytes (ulimit -f;
    Python ignores SIGXFSZ, so the write fails with EFBIG as on a full disk)."""
    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run([sys.executable, "-m", "vqbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, preexec_fn=limit_files,
                          env=dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1"))


def _plain_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vqbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1"))


def _one_line(stderr, *culprits):
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("extracting")]
    assert len(lines) == 1 and lines[0].startswith("vqbench: error: "), stderr
    for c in culprits:
        assert str(c) in lines[0], (c, lines[0])


def test_hydra_config_write_failure_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    out = _limited_cli(*TOY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 2
    _one_line(out.stderr, f"cannot write {run_dir / '.hydra' / 'hydra.yaml'} (OSError: File too large)", "hydra.run.dir")
    assert not run_dir.exists()  # no truncated .hydra/hydra.yaml, no empty run


def test_failed_rerun_on_full_disk_keeps_hydra_of_the_results(tmp_path):
    run_dir = tmp_path / "run"
    assert _plain_cli(*TOY, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
    metrics = (run_dir / "metrics.json").read_bytes()
    out = _limited_cli(*TOY, "seed=5", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    _one_line(out.stderr, "File too large")
    assert {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()} == before  # seed 0, as metrics.json
    assert (run_dir / "metrics.json").read_bytes() == metrics
    assert json.loads(metrics)["config"]["seed"] == 0
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".hydra")] == [".hydra"]


def test_run_killed_while_hydra_set_aside_is_healed(tmp_path):
    """kill -9 between setting .hydra/ aside and the end of the run: the next run puts it back."""
    from vqbench.run import rundir

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("the results' run\n")
    os.replace(run_dir / ".hydra", run_dir / f"{rundir.SET_ASIDE}12345")  # what the killed run left
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("the killed run\n")
    rundir.acquire(run_dir)
    try:
        assert (run_dir / ".hydra" / "config.yaml").read_text() == "the results' run\n"
        assert not list(run_dir.glob(f"{rundir.SET_ASIDE}*"))
    finally:
        rundir.release(run_dir)


# ------------------------------------------------------------------ 9: permissions of index.faiss and the image cache
def test_index_and_image_cache_get_the_usual_permissions(tmp_path):
    root = tmp_path / "sift"
    make_texmex(root, "sift", nb=300, nq=10, nt=200, d=8, k=10)
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}", "experiment.save_index=true") == 0
    mask = _umask()
    assert (tmp_path / "run" / "index.faiss").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "run" / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~mask
    archive = tar_gz(png_tree(tmp_path / "imgs"), tmp_path / "imgs.tar.gz")
    cifar.load_image_folder(archive, tmp_path / "cache")
    (extracted,) = (tmp_path / "cache" / "extracted").iterdir()
    assert extracted.stat().st_mode & 0o777 == 0o777 & ~mask


# ------------------------------------------------------------------ 10: archives and checkpoints that are not
@pytest.mark.parametrize("content, reason", [
    (os.urandom(4096), "not a tar archive (neither a plain tar nor gzip/bzip2/xz-compressed)"),
    (b"", "empty file (0 bytes), not a tar archive"),
    (gzip.compress(b"hello, not a tar\n" * 10), "a gzip file that does not hold a (complete) tar archive"),
], ids=["random-bytes", "empty", "gzip-of-non-tar"])
def test_archive_that_is_not_a_tar_is_one_short_line(tmp_path, capsys, content, reason):
    archive = tmp_path / "imgs.tar.gz"
    archive.write_bytes(content)
    assert execute(tmp_path / "run", *QUICK_VQVAE, f"dataset.root={archive}", f"dataset.cache_dir={tmp_path / 'c'}") == 2
    line = one_line_error(capsys, f"dataset.root={archive}", reason)
    assert len(line) < 300 and "method" not in line
    no_results(tmp_path / "run")


@pytest.mark.parametrize("content", [b"garbage" * 100, b""], ids=["garbage", "empty"])
def test_garbage_checkpoint_with_resume_is_one_short_line(tmp_path, content):
    png_tree(tmp_path / "imgs")
    cfg = {**_vqvae_cfg(tmp_path), "resume": True}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(content)
    with pytest.raises(ConfigError) as err:
        vqvae_exp.run(cfg, tmp_path / "run", torch.device("cpu"))
    msg = str(err.value)
    assert msg.startswith(f"resume=true: cannot read checkpoint {tmp_path / 'run' / 'checkpoint.pt'} (not a PyTorch "
                          f"checkpoint") and "\n" not in msg and len(msg) < 300, msg
    assert "weights_only" not in msg and "issue" not in msg


# ------------------------------------------------------------------ 11: absurd sizes, refused with the estimate
@pytest.mark.parametrize("overrides, key", [
    (["dataset.dim=1000000000"], "dataset.dim=1000000000"),
    (["dataset.num_train=100000000000"], "dataset.num_train=100000000000"),
    (["optimizer.batch_size=10000000000"], "optimizer.batch_size=10000000000"),
    (["quantizer.num_codebooks=100000000"], "quantizer.num_codebooks=100000000"),
    (["quantizer=avq", "quantizer.beam_width=1000000000"], "quantizer.beam_width=1000000000"),
])
def test_absurd_toy_size_is_refused_with_the_estimate(tmp_path, capsys, overrides, key):
    assert execute(tmp_path / "run", *TOY, *overrides) == 2
    one_line_error(capsys, f"{key}: this run would need about ", "of memory", "estimated before any work",
                   f"use a smaller {key.split('=')[0]}")
    no_results(tmp_path / "run")


@pytest.mark.parametrize("overrides, key", [
    (["experiment.model.hidden_channels=1000000"], "experiment.model.hidden_channels=1000000"),
    (["optimizer.batch_size=1000000000"], "optimizer.batch_size=1000000000"),
])
def test_absurd_vqvae_size_is_refused_before_reading_data(tmp_path, capsys, overrides, key):
    assert execute(tmp_path / "run", *QUICK_VQVAE, f"dataset.root={tmp_path / 'absent'}", *overrides) == 2
    one_line_error(capsys, f"{key}: this run would need about ")


def test_absurd_ann_beam_is_refused(tmp_path, capsys):
    root = tmp_path / "sift"
    make_texmex(root, "sift", nb=300, nq=10, nt=200, d=8, k=10)
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}", "quantizer=avq", "optimizer=nsvq",
                   "quantizer.beam_width=1000000000") == 2
    one_line_error(capsys, "quantizer.beam_width=1000000000: this run would need about ")


def test_memory_estimates_of_the_presets_fit_a_laptop():
    """The estimates refuse absurd values, never the shipped presets (< 4 GiB each)."""
    from bad_input import composed

    from vqbench.experiments import toy
    from vqbench.run.schema import to_plain

    for overrides, module in (([], toy), (["experiment=vqvae"], vqvae_exp), (["experiment=vqvae_quick"], vqvae_exp),
                              (["quantizer=avq", "optimizer=kmeans"], toy)):
        total = sum(module.estimate_memory(to_plain(composed(*overrides))).values())
        assert 1 << 20 < total < 4 << 30, (overrides, total)


# ------------------------------------------------------------------ a new user's first sweep and first mistakes
@pytest.mark.parametrize("optimizer", ["nsvq", "ste", "kmeans"])
def test_every_optimizer_takes_every_budget_key(tmp_path, optimizer):
    """`vqbench -m optimizer=nsvq,ste,kmeans optimizer.steps=100`: each job accepts (and, where
    meaningless, ignores) the others' budget keys."""
    budget = ["optimizer.steps=3", "optimizer.lloyd_iterations=2", "optimizer.alternations=1"]
    assert execute(tmp_path / "run", *TOY, f"optimizer={optimizer}", *budget) == 0
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["config"]["optimizer"]["steps"] == 3 and record["config"]["optimizer"]["lloyd_iterations"] == 2


def test_sweep_over_optimizers_with_a_step_budget(tmp_path):
    out = _plain_cli("-m", "optimizer=nsvq,ste,kmeans", "optimizer.steps=10", *TOY[:4], "progress=false",
                     "device=cpu", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(p.parent.name for p in (tmp_path / "sweep").rglob("metrics.json")) == ["0", "1", "2"]


def test_refused_run_in_a_new_directory_leaves_nothing(tmp_path):
    run_dir = tmp_path / "run"
    out = _plain_cli(*TOY, "optimizer.lr=nan", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 2
    _one_line(out.stderr, "optimizer.lr must be a finite number > 0, got nan")
    assert not run_dir.exists()  # no .hydra/, no empty cli.log, no lock for the report to call incomplete


@pytest.mark.parametrize("value, culprit", [
    ("", "hydra.run.dir is empty"),
    ("{file}/sub", "hydra.run.dir={file}/sub: cannot use it as the run directory (Not a directory"),
])
def test_bad_output_path_names_hydra_run_dir(tmp_path, value, culprit):
    (tmp_path / "afile").write_text("x")
    value, culprit = (s.format(file=tmp_path / "afile") for s in (value, culprit))
    before = sorted(p.name for p in tmp_path.iterdir())
    out = _plain_cli(*TOY, f"hydra.run.dir={value}", cwd=tmp_path)
    assert out.returncode == 2
    _one_line(out.stderr, culprit)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written into the working directory


def test_report_lists_a_truncated_metrics_file_and_shows_the_main_metric(tmp_path, capsys):
    for name in ("a", "b"):
        assert execute(tmp_path / "runs" / name, *TOY) == 0
    damaged = tmp_path / "runs" / "b" / "metrics.json"
    damaged.write_bytes(damaged.read_bytes()[:100])
    assert report.main([str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert f"unreadable: {damaged}: not valid JSON" in out
    header = next(ln for ln in out.splitlines() if ln.startswith("| experiment.name"))
    assert "metrics.mse" in header
    mse = json.loads((tmp_path / "runs" / "a" / "metrics.json").read_text())["metrics"]["mse"]
    assert f"{mse:.4g}"[:4] in out


def test_data_info_reports_every_bad_file_and_goes_on(tmp_path, capsys):
    write_vecs(tmp_path / "a_base.fvecs", np.ones((5, 4), dtype=np.float32))
    write_vecs(tmp_path / "b_learn.fvecs", np.ones((5, 4), dtype=np.float32))
    with open(tmp_path / "b_learn.fvecs", "r+b") as f:
        f.truncate(30)
    (tmp_path / "c.hdf5").write_text("not hdf5")
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f["train"] = np.zeros((3, 2), dtype=np.float32)
    assert data_cli.main(["info", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["a_base.fvecs: 5 x 4 float32", "d.hdf5:train: 3 x 2 float32"]
    errors = captured.err.splitlines()
    assert len(errors) == 2 and str(tmp_path / "b_learn.fvecs") in errors[0] and "truncated" in errors[0]
    assert errors[1].startswith(f"vqbench-data: error: {tmp_path / 'c.hdf5'}: not a readable HDF5 file")


def test_sift_steps_error_names_paper_sift_steps(tmp_path, capsys):
    assert execute(tmp_path / "run", "+paper=fig5", "ann_method=avq_nsvq", "paper.sift_steps=-3",
                   f"dataset.root={tmp_path}") == 2
    one_line_error(capsys, "paper.sift_steps must be >= 1, got -3")


def test_kmeans_failure_does_not_suggest_a_step_size(tmp_path, capsys):
    root = tmp_path / "sift"
    data = make_texmex(root, "sift", nb=300, nq=10, nt=200, d=8, k=10)
    write_vecs(root / "sift_base.fvecs", data["base"] * np.float32(1e30))  # finite, but squares overflow
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 2
    line = one_line_error(capsys, "non-finite metrics")
    assert "optimizer.lr" not in line


def test_directory_named_like_a_vector_file_is_not_called_missing(tmp_path, capsys):
    root = tmp_path / "sift"
    make_texmex(root, "sift", nb=300, nq=10, nt=200, d=8, k=10)
    (root / "sift_base.fvecs").unlink()
    (root / "sift_base.fvecs").mkdir()
    assert execute(tmp_path / "run", *ANN, f"dataset.root={root}") == 2
    line = one_line_error(capsys, f"{root / 'sift_base.fvecs'} is a directory, not a vector file")
    assert "missing" not in line


# ------------------------------------------------------------------ device portability (CPU side)
def test_checkpoint_noise_state_of_another_device_resumes_with_a_warning(tmp_path, caplog):
    """A checkpoint written on CUDA holds a Philox generator state (16 bytes: seed, offset);
    a CPU run cannot set it. Resuming continues from a fresh noise stream with one warning."""
    import logging

    png_tree(tmp_path / "imgs")
    cfg = _vqvae_cfg(tmp_path, epochs=1)
    vqvae_exp.run(cfg, tmp_path / "run", torch.device("cpu"))
    ckpt = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    state["rng"]["noise_generator"] = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0] + [0] * 8, dtype=torch.uint8)
    torch.save(state, ckpt)
    more = {**cfg, "resume": True, "experiment": {**cfg["experiment"], "epochs": 2}}
    with caplog.at_level(logging.WARNING):
        out = vqvae_exp.run(more, tmp_path / "run", torch.device("cpu"))
    assert out["metrics"]["epochs"] == 2 and np.isfinite(out["metrics"]["psnr"])
    assert "written on another kind of device" in caplog.text


def test_fresh_batches_are_drawn_on_the_given_device():
    from vqbench.data.toy import make_toy_data

    data = make_toy_data("correlated", 8, 0.9, 64, 16, seed=3)
    a, b = data.batches("cpu")(5), data.batches(torch.device("cpu"))(5)
    assert a.device.type == "cpu" and torch.equal(a, b) and a.shape == (5, 8)


# ------------------------------------------------------------------ threads
def test_threads_key_and_default(tmp_path, capsys, monkeypatch):
    from vqbench.common.threads import default_threads, physical_cores, set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads({"threads": 1}) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert default_threads() == 3  # the user's environment wins
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert 1 <= default_threads() <= min(4, physical_cores()) <= (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
    assert execute(tmp_path / "run", *TOY, "threads=0") == 2
    one_line_error(capsys, "threads must be in 1..1024 or null, got 0")
