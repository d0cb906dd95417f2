"""Adding an optimizer is one module and one registry line: an optimizer defined here, in the
test, and registered with ``register_optimizer`` runs through the toy, ANN and VQ-VAE
experiments (composed by Hydra as ``optimizer=<name>``) with no other file touched."""

import math
from dataclasses import dataclass

import pytest
import torch
from ann_data import make_texmex
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from PIL import Image

from vqbench.run import cli
from vqbench.run.config import ConfigError
from vqbench.run.schema import GROUP_OPTIONS, option_defaults, to_plain
from vqbench.training import OPTIMIZERS, optimizer_spec, register_optimizer, unregister_optimizer
from vqbench.training.gradient import GradientConfig, GradientOptimizer
from vqbench.training.spec import Bottleneck


# ------------------------------------------------------------------ the optimizer under test
@dataclass
class CodebookOnlyConfig(GradientConfig):
    """STE without commitment: only the codebook loss ||sg[x] - x_hat||^2 moves the codebooks."""

    name: str = "codebook_only"
    weight: float = 1.0  # a key of its own, to show it reaches the optimizer


class CodebookOnlyBottleneck(Bottleneck):
    def __init__(self, quantizer, weight, calls):
        super().__init__(quantizer)
        self.weight, self.calls = weight, calls

    def forward(self, z, codes):
        self.calls["bottleneck"] += 1
        x_hat = self.quantizer.decode(codes)
        return z + (x_hat - z).detach(), self.weight * (z.detach() - x_hat).pow(2).mean()


class CodebookOnly(GradientOptimizer):
    name = "codebook_only"
    Config = CodebookOnlyConfig

    def __init__(self):
        self.calls = {"raw_loss": 0, "bottleneck": 0, "check": 0}
        self.weights = []

    def check_config(self, ocfg):
        self.calls["check"] += 1
        super().check_config(ocfg)
        if not ocfg["weight"] > 0:
            raise ConfigError(f"optimizer.weight must be > 0, got {ocfg['weight']!r}")

    def raw_loss(self, x, x_hat, ocfg):
        self.calls["raw_loss"] += 1
        self.weights.append(ocfg["weight"])
        err2 = (x.detach() - x_hat).pow(2).sum(1)
        return ocfg["weight"] * err2.mean(), err2.detach()

    def bottleneck(self, quantizer, ocfg, generator):
        self.weights.append(ocfg["weight"])
        return CodebookOnlyBottleneck(quantizer, ocfg["weight"], self.calls)


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def optimizer():
    spec = register_optimizer(CodebookOnly())
    yield spec
    unregister_optimizer(spec.name)
    assert spec.name not in OPTIMIZERS and spec.name not in GROUP_OPTIONS["optimizer"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def finite(metrics, *keys):
    for key in keys:
        assert math.isfinite(metrics[key]), (key, metrics[key])


COMMON = ("optimizer=codebook_only", "optimizer.weight=2.0", "progress=false", "device=cpu")


# ------------------------------------------------------------------ tests
def test_registered_optimizer_is_a_config_option_with_its_own_keys(optimizer):
    assert optimizer_spec("codebook_only") is optimizer
    cfg = to_plain(composed(*COMMON))
    assert cfg["optimizer"] == option_defaults("optimizer", "codebook_only", weight=2.0)
    assert cfg["optimizer"]["steps"] == 600  # inherited from GradientConfig
    with pytest.raises(ConfigCompositionException):
        composed("optimizer=codebook_only", "optimizer.beta=0.3")  # a key it does not declare


def test_unregistered_optimizer_is_gone(optimizer):
    unregister_optimizer("codebook_only")
    with pytest.raises(ConfigError, match="optimizer.name must be one of"):
        optimizer_spec("codebook_only")
    with pytest.raises(ConfigCompositionException):
        composed("optimizer=codebook_only")
    register_optimizer(optimizer)  # for the fixture's teardown


def test_its_checks_run(optimizer, tmp_path):
    cfg = composed(*COMMON, "optimizer.weight=-1")
    with pytest.raises(ConfigError, match="optimizer.weight must be > 0"):
        cli.run(cfg, tmp_path)
    assert optimizer.calls["check"] == 1


def test_toy_experiment(optimizer, tmp_path):
    record = cli.run(composed(*COMMON, "optimizer.steps=40", "optimizer.batch_size=128", "dataset.num_train=2048",
                              "dataset.num_test=512", "dataset.dim=8", "quantizer.num_codebooks=2",
                              "quantizer.bits_per_codebook=3", "dataset.fresh_batches=true"), tmp_path)
    assert optimizer.calls["raw_loss"] == 40 and set(optimizer.weights) == {2.0}
    m = record["metrics"]
    finite(m, "mse", "snr_db", "train.train_mse")
    assert m["mse"] < m["data_variance"]  # it learned something: below the zero codebook's error
    assert record["config"]["optimizer"]["name"] == "codebook_only"
    assert (tmp_path / "metrics.json").is_file()


def test_ann_experiment(optimizer, tmp_path):
    make_texmex(tmp_path / "data", prefix="sift", nb=600, nq=20, nt=500, d=8)
    record = cli.run(composed("experiment=ann", f"dataset.root={tmp_path / 'data'}", "quantizer=rvq",
                              "quantizer.num_codebooks=2", "quantizer.bits_per_codebook=3", "optimizer.steps=30",
                              "optimizer.batch_size=128", "experiment.search_k=100", *COMMON), tmp_path)
    assert optimizer.calls["raw_loss"] == 30
    m = record["metrics"]
    finite(m, "mse", "recall@1", "recall@10", "train.train_mse")
    assert m["recall@100"] > 100 / 600  # better than a random ranking


def test_vqvae_experiment(optimizer, tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(12, 3, 4, 4, generator=g), size=32, mode="bilinear")
    for i, a in enumerate((images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        d = tmp_path / "imgs" / ("train" if i < 8 else "test") / "a"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i:03d}.png")
    record = cli.run(composed("experiment=vqvae_quick", "dataset=image_folder", f"dataset.root={tmp_path / 'imgs'}",
                              f"dataset.cache_dir={tmp_path / 'cache'}", "experiment.epochs=1",
                              "experiment.model.latent_dim=8", "experiment.model.hidden_channels=8",
                              "experiment.model.res_channels=4", "experiment.model.res_blocks=1",
                              "experiment.eval_batch_size=4", "experiment.grid_images=2",
                              "quantizer.num_codebooks=2", "quantizer.bits_per_codebook=3",
                              "optimizer.batch_size=4", *COMMON), tmp_path)
    assert optimizer.calls["bottleneck"] == 2  # 8 training images, 4 per step
    assert optimizer.calls["raw_loss"] == 0
    m = record["metrics"]
    finite(m, "psnr", "ssim", "mse", "train_loss")
    assert m["steps"] == 2.0
