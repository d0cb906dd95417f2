"""Every estimator is an optimizer of every experiment: ``optimizer=nsvq|ste|rotation|diveq|
sf_diveq|gumbel|ema|kmeans`` composes (``--cfg job``) and runs a 50-step toy run; ``quantizer=fsq``
runs in the toy task and the VQ-VAE; a VQ-VAE trains with the rotation trick."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from vqbench.run import cli
from vqbench.run.config import ConfigError
from vqbench.training import OPTIMIZERS

ALL = ["nsvq", "ste", "rotation", "diveq", "sf_diveq", "gumbel", "ema", "kmeans"]
TOY = ("progress=false", "device=cpu", "optimizer.steps=50", "optimizer.batch_size=128", "dataset.num_train=1024",
       "dataset.num_test=256", "dataset.dim=8", "quantizer.num_codebooks=2", "quantizer.bits_per_codebook=4",
       "optimizer.replacement.num_batches=10")


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_every_builtin_estimator_is_an_optimizer():
    assert list(OPTIMIZERS) == ALL


def test_cfg_job_composes_a_new_optimizer():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "vqbench", "optimizer=diveq", "--cfg", "job"], capture_output=True,
                         text=True, check=True, env=env).stdout
    assert "name: diveq" in out and "noise_std: 0.001" in out


@pytest.mark.parametrize("optimizer", ALL)
def test_toy_run_of_50_steps(optimizer, tmp_path):
    quantizer = "pvq" if optimizer == "sf_diveq" else "rvq"
    record = cli.run(composed(f"optimizer={optimizer}", f"quantizer={quantizer}", *TOY), tmp_path)
    m = record["metrics"]
    assert math.isfinite(m["mse"]) and m["mse"] < m["data_variance"]
    assert record["config"]["optimizer"]["name"] == optimizer


def test_toy_fsq_at_the_paper_bitrate(tmp_path):
    record = cli.run(composed("quantizer=fsq", "quantizer.num_codebooks=4", "quantizer.bits_per_codebook=3", *TOY[:-3]),
                     tmp_path)
    m = record["metrics"]
    assert m["bits"] == 12.0 and math.isfinite(m["mse"]) and m["mse"] < m["data_variance"]
    with pytest.raises(ConfigError, match="quantizer=fsq has none"):
        cli.run(composed("quantizer=fsq", "optimizer=kmeans", *TOY[:-3]), tmp_path / "km")
    with pytest.raises(ConfigError, match="no FSQ level table for 5 bits"):
        cli.run(composed("quantizer=fsq", "quantizer.num_codebooks=1", "quantizer.bits_per_codebook=5", *TOY[:-3]),
                tmp_path / "bad")


@pytest.fixture
def images(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = torch.nn.functional.interpolate(torch.rand(12, 3, 4, 4, generator=g), size=32, mode="bilinear")
    for i, a in enumerate((data * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        d = tmp_path / "imgs" / ("train" if i < 8 else "test") / "a"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i:03d}.png")
    return tmp_path


@pytest.mark.parametrize("choice", ["quantizer=fsq", "optimizer=rotation"])
def test_vqvae_quick_runs(images, choice):
    record = cli.run(composed("experiment=vqvae_quick", choice, "dataset=image_folder", f"dataset.root={images / 'imgs'}",
                              f"dataset.cache_dir={images / 'cache'}", "experiment.epochs=1",
                              "experiment.model.latent_dim=8", "experiment.model.hidden_channels=8",
                              "experiment.model.res_channels=4", "experiment.model.res_blocks=1",
                              "experiment.eval_batch_size=4", "experiment.grid_images=2", "quantizer.num_codebooks=4",
                              "quantizer.bits_per_codebook=3", "optimizer.batch_size=4", "progress=false",
                              "device=cpu"), images / "run")
    m = record["metrics"]
    assert m["steps"] == 2.0 and math.isfinite(m["psnr"]) and m["bits"] == 12.0
    rows = (images / "run" / "curves.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,train_loss") and len(rows) == 2  # one row per epoch
