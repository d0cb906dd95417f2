"""Adding an estimator is one module and its tests: an estimator defined here, in the test, and
registered with ``register_estimator`` is a layer option (``vqbench.RVQ(..., estimator=name)``)
and an optimizer of the toy, ANN and VQ-VAE experiments (composed by Hydra as ``optimizer=<name>``),
with no other file touched."""

import math
from dataclasses import dataclass

import pytest
import torch
from ann_data import make_texmex
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from PIL import Image

import vqbench
from vqbench.run import cli
from vqbench.run.config import ConfigError
from vqbench.run.schema import GROUP_OPTIONS, option_defaults, to_plain
from vqbench.training import ESTIMATORS, OPTIMIZERS, Estimate, Estimator, optimizer_spec, register_estimator, unregister_estimator
from vqbench.training.gradient import GradientConfig

CALLS = {"forward": 0, "raw_loss": 0, "after_step": 0, "check": 0, "weights": []}


# ------------------------------------------------------------------ the estimator under test
@dataclass
class CodebookOnlyConfig(GradientConfig):
    """STE without commitment: only the codebook loss ||sg[x] - x_hat||^2 moves the codebooks."""

    name: str = "codebook_only"
    weight: float = 1.0  # a key of its own, to show it reaches the estimator


class CodebookOnly(Estimator):
    """Straight-through output, weight * codebook loss per element."""

    name = "codebook_only"
    Config = CodebookOnlyConfig

    def __init__(self, quantizer, settings, generator=None):
        super().__init__(quantizer, settings, generator)
        self.weight = float(settings["weight"])
        CALLS["weights"].append(self.weight)

    @classmethod
    def check(cls, settings, prefix=""):
        CALLS["check"] += 1
        if not settings["weight"] > 0:
            raise ConfigError(f"{prefix}weight must be > 0, got {settings['weight']!r}")

    def forward(self, x, x_hat, codes):
        CALLS["forward"] += 1
        return Estimate(x + (x_hat - x).detach(), codes, self.weight * (x.detach() - x_hat).pow(2).mean())

    def raw_loss(self, x, x_hat, codes):
        CALLS["raw_loss"] += 1
        return super().raw_loss(x, x_hat, codes)

    def after_step(self, x, codes):
        CALLS["after_step"] += 1


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def estimator():
    for key in CALLS:
        CALLS[key] = [] if key == "weights" else 0
    cls = register_estimator(CodebookOnly)
    yield cls
    unregister_estimator(cls.name)
    assert cls.name not in ESTIMATORS and cls.name not in OPTIMIZERS and cls.name not in GROUP_OPTIONS["optimizer"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def finite(metrics, *keys):
    for key in keys:
        assert math.isfinite(metrics[key]), (key, metrics[key])


COMMON = ("optimizer=codebook_only", "optimizer.weight=2.0", "progress=false", "device=cpu")


# ------------------------------------------------------------------ tests
def test_registered_estimator_is_a_layer_option(estimator):
    assert "codebook_only" in vqbench.ESTIMATORS
    layer = vqbench.RVQ(8, num_codebooks=2, codebook_size=8, estimator="codebook_only", weight=3.0)
    x = torch.randn(64, 8, requires_grad=True)
    out = layer(x)
    (out.x_hat.pow(2).mean() + out.aux_loss).backward()
    assert CALLS["forward"] == 1 and CALLS["weights"] == [3.0]
    assert torch.equal(x.grad, 2 * out.x_hat.detach() / out.x_hat.numel())  # straight through
    assert layer.codebooks.grad.abs().sum() > 0
    layer(x)  # the next forward runs the previous batch's after-step hook
    assert CALLS["after_step"] == 1
    with pytest.raises(TypeError, match="has no option 'beta2'"):
        vqbench.RVQ(8, estimator="codebook_only", beta2=1.0)
    with pytest.raises(ValueError, match="vqbench.RVQ: weight must be > 0"):
        vqbench.RVQ(8, estimator="codebook_only", weight=-1.0)


def test_registered_estimator_is_a_config_option_with_its_own_keys(estimator):
    assert optimizer_spec("codebook_only").estimator_class is estimator
    cfg = to_plain(composed(*COMMON))
    assert cfg["optimizer"] == option_defaults("optimizer", "codebook_only", weight=2.0)
    assert cfg["optimizer"]["steps"] == 600  # inherited from GradientConfig
    with pytest.raises(ConfigCompositionException):
        composed("optimizer=codebook_only", "optimizer.beta=0.3")  # a key it does not declare


def test_unregistered_estimator_is_gone(estimator):
    unregister_estimator("codebook_only")
    with pytest.raises(ConfigError, match="optimizer.name must be one of"):
        optimizer_spec("codebook_only")
    with pytest.raises(ConfigCompositionException):
        composed("optimizer=codebook_only")
    with pytest.raises(ValueError, match="estimator must be one of"):
        vqbench.VQ(8, estimator="codebook_only")
    register_estimator(estimator)  # for the fixture's teardown


def test_its_checks_run(estimator, tmp_path):
    cfg = composed(*COMMON, "optimizer.weight=-1")
    with pytest.raises(ConfigError, match="optimizer.weight must be > 0"):
        cli.run(cfg, tmp_path)
    assert CALLS["check"] == 1


def test_toy_experiment(estimator, tmp_path):
    record = cli.run(composed(*COMMON, "optimizer.steps=40", "optimizer.batch_size=128", "dataset.num_train=2048",
                              "dataset.num_test=512", "dataset.dim=8", "quantizer.num_codebooks=2",
                              "quantizer.bits_per_codebook=3", "dataset.fresh_batches=true"), tmp_path)
    assert CALLS["raw_loss"] == 40 and CALLS["after_step"] == 40 and CALLS["weights"] == [2.0]
    m = record["metrics"]
    finite(m, "mse", "snr_db", "train.train_mse")
    assert m["mse"] < m["data_variance"]  # it learned something: below the zero codebook's error
    assert record["config"]["optimizer"]["name"] == "codebook_only"
    assert (tmp_path / "metrics.json").is_file()


def test_ann_experiment(estimator, tmp_path):
    make_texmex(tmp_path / "data", prefix="sift", nb=600, nq=20, nt=500, d=8)
    record = cli.run(composed("experiment=ann", f"dataset.root={tmp_path / 'data'}", "quantizer=rvq",
                              "quantizer.num_codebooks=2", "quantizer.bits_per_codebook=3", "optimizer.steps=30",
                              "optimizer.batch_size=128", "experiment.search_k=100", *COMMON), tmp_path)
    assert CALLS["raw_loss"] == 30
    m = record["metrics"]
    finite(m, "mse", "recall@1", "recall@10", "train.train_mse")
    assert m["recall@100"] > 100 / 600  # better than a random ranking


def test_vqvae_experiment(estimator, tmp_path):
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
    assert CALLS["forward"] == 2 and CALLS["after_step"] == 2  # 8 training images, 4 per step: the VQ-VAE's layer
    assert CALLS["raw_loss"] == 0
    m = record["metrics"]
    finite(m, "psnr", "ssim", "mse", "train_loss")
    assert m["steps"] == 2.0
