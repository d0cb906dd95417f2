"""The Hydra CLI: composition, validation errors, metrics.json, multirun, packaging."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from vqbench import cli
from vqbench.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["dataset.num_train=2048", "dataset.num_test=512", "dataset.dim=16", "optimizer.iterations=20",
         "optimizer.batch_size=64", "progress=false"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def vqbench(*args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "vqbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_defaults_compose():
    cfg = composed()
    assert cfg.experiment.name == "toy" and cfg.quantizer.name == "rvq" and cfg.optimizer.name == "nsvq"
    assert cfg.dataset.dim == 64 and cfg.seed == 0 and cfg.device == "auto"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["quantizer=pvq", "quantizer.num_codebooks=5"], "not divisible by quantizer.num_codebooks=5"),
        (["quantizer.bits_per_codebook=17"], "quantizer.bits_per_codebook must be in 1..16, got 17"),
        (["quantizer.bits_per_codebook=0"], "quantizer.bits_per_codebook must be in 1..16, got 0"),
        (["quantizer=avq", "quantizer.beam_width=0"], "quantizer.beam_width must be >= 1, got 0"),
        (["quantizer=vq", "quantizer.num_codebooks=2"], "quantizer.num_codebooks must be 1"),
        (["+quantizer.colour=red"], "unknown option 'quantizer.colour'"),
        (["+verbose=1"], "unknown option 'verbose'"),
        (["optimizer.lr=-1"], "optimizer.lr must be a finite positive number"),
        (["device=tpu"], "device must be auto, cpu or cuda"),
        (["dataset.kind=laplacian"], "dataset.kind must be one of"),
        (["quantizer=avq", "quantizer.bits_per_codebook=12"], "exceeds"),
    ],
)
def test_invalid_settings_fail_before_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        cli.run(composed(*overrides), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_run_writes_metrics_json_and_prints_a_row(tmp_path):
    res = vqbench(*SMALL, "quantizer=avq", "optimizer=kmeans", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rd_gap_db" in res.stdout and "avq" in res.stdout
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(record) == {"config", "metrics", "timings", "environment"}
    m = record["metrics"]
    assert m["bits"] == 16.0 and m["mse"] > 0 and m["rd_bound_mse"] < m["mse"]
    assert m["rd_gap_db"] == pytest.approx(10 * __import__("math").log10(m["mse"] / m["rd_bound_mse"]))
    assert {"data", "train", "encode", "total"} <= set(record["timings"])
    assert record["environment"]["seed"] == 0 and record["environment"]["device"] == "cpu"
    assert record["config"]["quantizer"]["name"] == "avq"
    assert not list((tmp_path / "run").glob(".metrics.json.*"))  # no temp file left


def test_config_error_is_one_line_and_nonzero(tmp_path):
    res = vqbench("quantizer=pvq", "quantizer.num_codebooks=3", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert lines == ["vqbench: error: quantizer=pvq: data dimension 64 (dataset.dim) is not divisible by "
                     "quantizer.num_codebooks=3"]


def test_unknown_option_without_plus_is_rejected(tmp_path):
    res = vqbench("quantizer.colour=red", cwd=tmp_path)
    assert res.returncode != 0 and "quantizer.colour" in res.stderr


def test_cfg_job_prints_composed_config(tmp_path):
    res = vqbench("quantizer=avq", "--cfg", "job", cwd=tmp_path)
    assert res.returncode == 0
    assert "name: avq" in res.stdout and "beam_width: 16" in res.stdout


def test_multirun_leaves_one_metrics_file_per_job(tmp_path):
    res = vqbench("-m", *SMALL, "quantizer=rvq,pvq", "quantizer.bits_per_codebook=2,3", "optimizer=kmeans",
                  f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    files = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(files) == 4
    combos = {(json.loads(f.read_text())["config"]["quantizer"]["name"],
               json.loads(f.read_text())["metrics"]["bits"]) for f in files}
    assert combos == {("rvq", 8.0), ("rvq", 12.0), ("pvq", 8.0), ("pvq", 12.0)}


def test_a_sweep_survives_an_invalid_job(tmp_path):
    """Job 0 (M = 3 does not divide 16 dims) fails alone; jobs 1 and 2 still run and write metrics."""
    res = vqbench("-m", *SMALL, "quantizer=pvq", "quantizer.num_codebooks=3,4,2", "optimizer=kmeans",
                  f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    sweep = tmp_path / "sweep"
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == ["1", "2"]
    failed = json.loads((sweep / "0" / "failed.json").read_text())
    assert not (sweep / "0" / "metrics.json").exists()
    assert "not divisible by quantizer.num_codebooks=3" in failed["error"]
    assert "quantizer.num_codebooks=3" in failed["overrides"]
    assert failed["config"]["quantizer"]["num_codebooks"] == 3
    assert "vqbench: sweep" in res.stderr and "2 of 3 jobs finished" in res.stderr
    assert "failed job 0" in res.stderr


def test_plain_pip_install_ships_the_configs(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    assert (target / "vqbench" / "conf" / "quantizer" / "avq.yaml").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    probe = ("import vqbench, vqbench.config as c; print(vqbench.__file__); "
             "print(sorted(c.known_keys('quantizer')))")
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].startswith(str(target))
    res = subprocess.run([sys.executable, "-m", "vqbench", "quantizer=pvq", "--cfg", "job"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "name: pvq" in res.stdout, res.stderr
