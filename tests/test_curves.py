"""Learning curves: every run writes curves.csv; ``vqbench-report --curves`` draws them (mean and
range over seeds); logger=tensorboard needs its optional package."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_module

from vqbench.common.curves import read_curves
from vqbench.report.cli import main as report_main
from vqbench.report.curves import find_curves, group_runs, mean_and_band
from vqbench.run import cli
from vqbench.run.config import ConfigError

TOY = ("progress=false", "device=cpu", "optimizer.steps=30", "optimizer.batch_size=64", "dataset.num_train=512",
       "dataset.num_test=128", "dataset.dim=8", "quantizer.num_codebooks=2", "quantizer.bits_per_codebook=3")


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_toy_run_writes_curves_and_report_draws_them(tmp_path):
    for optimizer in ("nsvq", "ema"):
        for seed in (0, 1):
            cli.run(composed(f"optimizer={optimizer}", f"seed={seed}", *TOY), tmp_path / f"{optimizer}{seed}")
    rows = read_curves(tmp_path / "nsvq0" / "curves.csv")
    assert [r["step"] for r in rows[:3]] == [1.0, 2.0, 3.0] and len(rows) == 31
    assert all({"train_loss", "perplexity", "usage"} <= set(r) for r in rows[:-1])
    assert rows[-1]["step"] == 30 and "test_mse" in rows[-1]
    groups = group_runs(find_curves([tmp_path]))
    assert sorted(groups) == ["name=ema", "name=nsvq"] and all(len(c) == 2 for c in groups.values())
    xs, mean, lo, hi = mean_and_band(groups["name=nsvq"], "train_loss", "step")
    assert len(xs) == 30 and (lo <= mean).all() and (mean <= hi).all()
    out = tmp_path / "curves.png"
    assert report_main([str(tmp_path), "--curves", "train_loss", "perplexity", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert report_main([str(tmp_path / "none"), "--curves"]) == 2


def test_kmeans_run_writes_its_final_row(tmp_path):
    cli.run(composed("optimizer=kmeans", *TOY), tmp_path)
    rows = read_curves(tmp_path / "curves.csv")
    assert len(rows) == 1 and rows[0]["step"] == 0 and "test_mse" in rows[0]


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_tensorboard_logger_needs_its_package(tmp_path):
    with pytest.raises(ConfigError, match="logger=tensorboard needs the tensorboard package"):
        cli.run(composed("logger=tensorboard", *TOY), tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="no tensorboard")
def test_tensorboard_logger_writes_events(tmp_path):
    cli.run(composed("logger=tensorboard", *TOY), tmp_path)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
