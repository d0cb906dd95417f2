"""Bad input, one test per failure mode: the exit status, a one-line message that names the
culprit (file, row, key or value), and no partial result in the run directory.

This file: settings, vector data (NaN/Inf, ground truth, damaged and unreadable files),
`vqbench-data` arguments, image archives and caches. test_bad_runs.py: resume, failed
writes, the run-directory lock. test_download.py: downloads. Runs go through `cli.execute`
in-process (the exit status `vqbench` returns).
"""

import contextlib
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from ann_data import make_hdf5, make_texmex
from bad_input import ANN, TOY, composed, execute, no_results, one_line_error, png_tree, strict_json, tar_gz

from vqbench.common.atomic import write_json_atomic
from vqbench.data import cifar
from vqbench.data import cli as data_cli
from vqbench.data.download import extract
from vqbench.data.vecs import write_vecs
from vqbench.run import cli
from vqbench.run.config import ConfigError


# ------------------------------------------------------------------ settings (exit 2 before any work)
@pytest.mark.parametrize("overrides, culprit", [
    (["optimizer.lr=inf"], "optimizer.lr must be a finite number > 0, got inf"),
    (["optimizer.lr=nan"], "optimizer.lr must be a finite number > 0, got nan"),
    (["optimizer.lr=0"], "optimizer.lr must be > 0, got 0"),
    (["seed=-1"], "seed must be in 0..9223372036854775807, got -1"),
    (["optimizer.replacement.noise=-1"], "optimizer.replacement.noise must be >= 0, got -1"),
    (["optimizer.replacement.noise=nan"], "optimizer.replacement.noise must be a finite number >= 0, got nan"),
    (["optimizer=ste", "optimizer.beta=nan"], "optimizer.beta must be a finite number >= 0, got nan"),
    (["optimizer.replacement.discard_threshold=2"],
     "optimizer.replacement.discard_threshold must be in [0, 1], got 2"),
    (["optimizer.batch_size=0"], "optimizer.batch_size must be >= 1, got 0"),
    (["quantizer.bits_per_codebook=17"], "quantizer.bits_per_codebook must be in 1..16, got 17"),
    (["dataset.rho=1.0"], "dataset.rho must be in (-1, 1), got 1.0"),
    (["optimizer=kmeans", "optimizer.alternations=-1"], "optimizer.alternations must be >= 0, got -1"),
    (["dataset.num_train=0"], "dataset.num_train must be >= 1, got 0"),
    (["optimizer=kmeans", "dataset.fresh_batches=true"], "dataset.fresh_batches=true needs a gradient optimizer"),
    (["quantizer=pvq", "quantizer.num_codebooks=3"], "not divisible by quantizer.num_codebooks=3"),
])
def test_bad_setting_is_refused_before_work(tmp_path, capsys, overrides, culprit):
    base = [o for o in TOY if not o.startswith("optimizer.steps")] if "optimizer=kmeans" in overrides else TOY
    assert execute(tmp_path / "run", *base, *overrides) == 2
    one_line_error(capsys, culprit)
    no_results(tmp_path / "run")


@pytest.mark.parametrize("overrides, culprit", [
    (["seed=1.5"], "seed: Value '1.5' of type 'float' could not be converted to Integer"),
    (["progress=maybe"], "progress: Value 'maybe' is not a valid bool"),
    (["resume=maybe"], "resume: Value 'maybe' is not a valid bool"),
    (["device=tpu"], "Invalid value 'tpu', expected one of [auto, cpu, cuda]"),
    (["dataset.rho=abc"], "dataset.rho: Value 'abc' of type 'str' could not be converted to Float"),
    (["optimizer.replacement.enabled=maybe"], "optimizer.replacement.enabled: Value 'maybe' is not a valid bool"),
    (["+optimizer.momentum=0.9"], "optimizer.momentum"),
])
def test_bad_type_is_refused_while_composing(overrides, culprit):
    """Types are the schema's: composition fails, and `vqbench` prints this one line (exit 2)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from vqbench.run.config import check_schema, composition_error_line

    try:
        check_schema(composed(*TOY, *overrides))
    except (HydraException, OmegaConfBaseException) as err:
        line = composition_error_line(err)
    except ConfigError as err:
        line = str(err)
    else:
        raise AssertionError(f"{overrides} composed without error")
    assert culprit in line and "\n" not in line, line


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
def test_truncated_image_archive_is_named(tmp_path, capsys):
    archive = tar_gz(png_tree(tmp_path / "imgs"), tmp_path / "imgs.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    assert execute(tmp_path / "run", "experiment=vqvae_quick", "dataset=image_folder", f"dataset.root={archive}",
                   f"dataset.cache_dir={cache}", "progress=false", "device=cpu") == 2
    one_line_error(capsys, f"dataset.root={archive}", "truncated or corrupt archive")
    no_results(tmp_path / "run")
    assert [p.name for p in (cache / "extracted").iterdir()] == []  # no half tree, no temporary left


def test_killed_extraction_leaves_nothing_behind(tmp_path):
    archive = tar_gz(png_tree(tmp_path / "imgs"), tmp_path / "imgs.tar.gz")
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
    tree = png_tree(tmp_path / "imgs")
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
    tree = png_tree(tmp_path / "imgs")
    bad = tree / "train" / "a" / "1.png"
    bad.write_bytes(b"not a png")
    assert execute(tmp_path / "run", "experiment=vqvae_quick", "dataset=image_folder", f"dataset.root={tree}",
                   f"dataset.cache_dir={tmp_path / 'cache'}", "progress=false", "device=cpu") == 2
    one_line_error(capsys, bad, "cannot decode image")
    no_results(tmp_path / "run")
