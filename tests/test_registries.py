"""Adding a quantizer or a classical optimizer is one module and its tests: a quantizer and an
optimizer defined here, in the test, and registered with ``register_quantizer`` and
``register_optimizer`` run through the toy experiment (``quantizer=ipq optimizer=samples``,
composed by Hydra) with no other file touched. Memory estimate, data checks, complexity and the
non-gradient rules come from the two classes' own hooks; nothing dispatches on their names."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException

from vqbench.common.checks import ConfigError, check_range
from vqbench.experiments import toy
from vqbench.metrics.complexity import encode_wmops
from vqbench.quantizers import PVQ, QUANTIZERS, build_quantizer, register_quantizer, unregister_quantizer
from vqbench.quantizers.pvq import PVQConfig
from vqbench.run import cli
from vqbench.run.schema import GROUP_OPTIONS, to_plain
from vqbench.training import OPTIMIZERS, OptimizerSpec, fit, register_optimizer, unregister_optimizer
from vqbench.training.spec import BudgetConfig

CALLS = {"memory_terms": 0, "check_data": [], "fit": 0}


# ------------------------------------------------------------------ the quantizer under test
@dataclass
class IPQConfig(PVQConfig):
    name: str = "ipq"


class InterleavedPQ(PVQ):
    """Product quantization over interleaved subspaces: codebook m codes dims m, m + M, m + 2M, ..."""

    name = "ipq"
    Config = IPQConfig
    faiss_export = None  # faiss's PQ slices contiguous dimensions

    def split(self, x):
        """[N, D] -> [N, M, D/M], subspace m holding dims m, m + M, ..."""
        return x.reshape(x.shape[0], self.codeword_dim, self.num_codebooks).transpose(1, 2)

    def decode(self, codes):
        return self.selected_codewords(codes).transpose(1, 2).reshape(codes.shape[0], self.dim)

    def contiguous(self, x):
        """x with its interleaved subspaces laid out one after the other (PVQ's layout)."""
        return self.split(x).reshape(x.shape[0], self.dim)

    def fit_kmeans(self, x, lloyd_iterations, alternations, seed, progress):
        x = np.ascontiguousarray(self.contiguous(torch.from_numpy(x)).numpy())
        return super().fit_kmeans(x, lloyd_iterations, alternations, seed, progress)

    def init_from_data(self, data, generator):
        super().init_from_data(self.contiguous(data), generator)

    @classmethod
    def memory_terms(cls, qcfg, dim):
        CALLS["memory_terms"] += 1
        return super().memory_terms(qcfg, dim)


# ------------------------------------------------------------------ the classical optimizer under test
@dataclass
class SamplesConfig(BudgetConfig):
    name: str = "samples"
    pool: int = 0  # draw the codewords from the first `pool` training vectors (0: all of them)


class Samples(OptimizerSpec):
    """Codebooks = random training (sub-)vectors (the quantizer's data initialisation), no training."""

    name = "samples"
    Config = SamplesConfig
    gradient = False

    def check_config(self, ocfg):
        check_range("optimizer.pool", ocfg["pool"], 0, integer=True)

    def check_data(self, cfg, rows, source):
        CALLS["check_data"].append((rows, source))
        pool = int(cfg["optimizer"]["pool"]) or rows
        k = 1 << int(cfg["quantizer"]["bits_per_codebook"])
        if min(rows, pool) < k:
            raise ConfigError(f"optimizer=samples: {source} gives {min(rows, pool)} vectors to draw from, fewer than "
                              f"the {k} codewords")

    def fit(self, quantizer, data, ocfg, device, seed, progress, batches, curve=None):
        CALLS["fit"] += 1
        if batches is not None:
            raise ConfigError("optimizer=samples draws from the fixed training set")
        pool = data[: int(ocfg["pool"])] if ocfg["pool"] else data
        quantizer.init_from_data(pool.to(device), torch.Generator().manual_seed(seed))
        return {"pool": float(len(pool))}


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def registered():
    for key in CALLS:
        CALLS[key] = [] if key == "check_data" else 0
    register_quantizer(InterleavedPQ)
    register_optimizer(Samples())
    yield
    unregister_quantizer("ipq")
    unregister_optimizer("samples")
    store = ConfigStore.instance().repo
    assert "ipq" not in QUANTIZERS and "ipq" not in GROUP_OPTIONS["quantizer"] and "ipq.yaml" not in store["quantizer"]
    assert "samples" not in OPTIMIZERS and "samples" not in GROUP_OPTIONS["optimizer"]
    assert "samples.yaml" not in store["optimizer"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


TINY = ("quantizer=ipq", "optimizer=samples", "progress=false", "device=cpu", "dataset.dim=8",
        "dataset.num_train=512", "dataset.num_test=256", "quantizer.num_codebooks=2", "quantizer.bits_per_codebook=3")


# ------------------------------------------------------------------ tests
def test_interleaved_pq_is_pvq_on_interleaved_dimensions():
    """Known answer: the interleaved quantizer's k-means fit on x is PVQ's on x with its
    subspaces laid out contiguously (same codes, same codewords)."""
    x = torch.randn(400, 8, generator=torch.Generator().manual_seed(0))
    ipq, pvq = InterleavedPQ(8, 2, 3), PVQ(8, 2, 3)
    ipq.fit_kmeans(x.numpy(), 5, 0, seed=1, progress=False)
    pvq.fit_kmeans(np.ascontiguousarray(ipq.contiguous(x).numpy()), 5, 0, seed=1, progress=False)
    assert torch.equal(ipq.codebooks, pvq.codebooks)
    assert torch.equal(ipq.encode(x), pvq.encode(ipq.contiguous(x)))
    assert torch.equal(ipq.contiguous(ipq.decode(ipq.encode(x))), pvq.decode(pvq.encode(ipq.contiguous(x))))


def test_registered_pair_runs_the_toy_experiment(registered, tmp_path):
    cfg = composed(*TINY, "optimizer.pool=64")
    assert to_plain(cfg)["optimizer"] == {"name": "samples", "steps": 600, "lloyd_iterations": 25, "alternations": 3,
                                          "pool": 64}
    record = cli.run(cfg, tmp_path)
    m = record["metrics"]
    assert CALLS["fit"] == 1 and CALLS["check_data"] == [(512, "dataset.num_train=512")]
    assert CALLS["memory_terms"] >= 1  # the memory estimate asked the quantizer's own hook
    assert m["train.pool"] == 64.0 and m["bits"] == 6.0
    assert math.isfinite(m["mse"]) and 0 < m["mse"] < m["data_variance"]
    q = build_quantizer(to_plain(cfg)["quantizer"], 8)
    assert m["encode_wmops"] == encode_wmops(q)  # its own operation count (PVQ's)
    assert "encode_wmops_paper" not in m  # the paper's calculator does not cover it
    # its memory terms: 2 codebooks of 8 codewords of 4 floats, Adam's 4 copies
    assert toy.estimate_memory(to_plain(cfg))["quantizer.num_codebooks=2"] == 2 * 8 * 4 * 4 * 4


def test_samples_codewords_are_training_subvectors(registered):
    data = torch.randn(100, 8, generator=torch.Generator().manual_seed(3))
    q = InterleavedPQ(8, 2, 3)
    fit(q, data, to_plain(composed(*TINY))["optimizer"], torch.device("cpu"), seed=0, progress=False)
    subvectors = q.split(data)  # [N, M, d]
    for m in range(2):
        for codeword in q.codebooks[m]:
            assert (subvectors[:, m] == codeword).all(dim=1).any()


def test_registered_hooks_refuse_before_any_work(registered, tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.num_train=512 gives 4 vectors to draw from, fewer than the 8"):
        cli.run(composed(*TINY, "optimizer.pool=4"), tmp_path)
    with pytest.raises(ConfigError, match="dataset.fresh_batches=true needs a gradient optimizer"):
        cli.run(composed(*TINY, "dataset.fresh_batches=true"), tmp_path)
    with pytest.raises(ConfigError, match="not divisible by quantizer.num_codebooks=3"):
        cli.run(composed(*TINY, "quantizer.num_codebooks=3"), tmp_path)
    assert CALLS["fit"] == 0 and not (tmp_path / "metrics.json").exists()


def test_unregistered_options_are_gone(registered):
    unregister_quantizer("ipq")
    unregister_optimizer("samples")
    with pytest.raises(ConfigCompositionException):
        composed("quantizer=ipq")
    with pytest.raises(ConfigCompositionException):
        composed("optimizer=samples")
    register_quantizer(InterleavedPQ)  # for the fixture's teardown
    register_optimizer(Samples())
