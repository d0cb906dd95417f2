"""optimizer.refine: joint least-squares codebooks after gradient training (training/refine.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vqbench.common.checks import ConfigError
from vqbench.quantizers import build_quantizer
from vqbench.run.schema import option_defaults
from vqbench.training import fit, optimizer_spec
from vqbench.training.refine import normal_equations, refine_codebooks, solve_codebooks


def one_hot(codes: np.ndarray, K: int) -> np.ndarray:
    N, M = codes.shape
    B = np.zeros((N, M * K))
    for m in range(M):
        B[np.arange(N), m * K + codes[:, m]] = 1.0
    return B


def test_normal_equations_match_the_one_hot_matrix_in_chunks():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(37, 5, generator=g)
    codes = torch.randint(4, (37, 3), generator=g)
    gram, rhs = normal_equations(x, codes, 3, 4, chunk=8)  # five chunks, the last short
    B = one_hot(codes.numpy(), 4)
    np.testing.assert_allclose(gram.numpy(), B.T @ B)
    np.testing.assert_allclose(rhs.numpy(), B.T @ x.double().numpy(), rtol=1e-12, atol=1e-12)


def test_joint_solve_is_the_least_squares_optimum():
    """Sums of codewords (RVQ/AVQ): the reconstruction and the error equal numpy lstsq's (the
    codebooks themselves are defined only up to B's null space, which the ridge fixes)."""
    g = torch.Generator().manual_seed(1)
    M, K, D, N = 3, 4, 6, 200
    x = torch.randn(N, D, generator=g)
    codes = torch.randint(K, (N, M), generator=g)
    old = torch.randn(M, K, D, generator=g)
    new = solve_codebooks(x, codes, old, ridge=1e-9, chunk=64)
    B = one_hot(codes.numpy(), K)
    C, *_ = np.linalg.lstsq(B, x.double().numpy(), rcond=None)
    ours = B @ new.double().reshape(M * K, D).numpy()
    np.testing.assert_allclose(ours, B @ C, atol=1e-5)
    best = ((x.double().numpy() - B @ C) ** 2).sum()
    assert ((x.double().numpy() - ours) ** 2).sum() == pytest.approx(best, rel=1e-6)


def test_subspace_solve_is_the_mean_of_each_codewords_vectors():
    """Concatenated sub-codewords (PVQ): per-subspace means; unused codewords stay put."""
    g = torch.Generator().manual_seed(2)
    M, K, d, N = 2, 4, 3, 50
    x = torch.randn(N, M * d, generator=g)
    codes = torch.randint(K - 1, (N, M), generator=g)  # codeword K-1 unused
    old = torch.randn(M, K, d, generator=g)
    new = solve_codebooks(x, codes, old, ridge=1e-9, chunk=16)
    for m in range(M):
        for k in range(K - 1):
            rows = x[codes[:, m] == k][:, m * d:(m + 1) * d]
            torch.testing.assert_close(new[m, k], rows.mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(new[m, K - 1], old[m, K - 1])
    # the same optimum as lstsq on the block-diagonal system
    B = one_hot(codes.numpy(), K)
    for m in range(M):
        Bm = B[:, m * K:(m + 1) * K]
        C, *_ = np.linalg.lstsq(Bm, x[:, m * d:(m + 1) * d].double().numpy(), rcond=None)
        np.testing.assert_allclose(Bm @ new[m].double().numpy(), Bm @ C, atol=1e-5)


@pytest.mark.parametrize("quantizer", ["rvq", "pvq", "avq", "vq"])
def test_refine_never_raises_the_training_mse(quantizer):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(600, 8, generator=g) * torch.linspace(2.0, 0.3, 8)
    qcfg = {"name": quantizer, "num_codebooks": 1 if quantizer == "vq" else 2, "bits_per_codebook": 3,
            "beam_width": 4}
    q = build_quantizer(qcfg, 8)
    ocfg = option_defaults("optimizer", "nsvq", steps=40, batch_size=64, refine=3)
    stats = fit(q, x, ocfg, torch.device("cpu"), seed=0, progress=False)
    mses = [stats[f"refine_mse_{r}"] for r in range(4)]
    assert all(b <= a for a, b in zip(mses, mses[1:]))
    assert 0 <= stats["refine_rounds_kept"] <= 3
    with torch.no_grad():
        final = (x - q.decode(q.encode(x))).pow(2).sum(1).mean().item()
    assert final == pytest.approx(mses[-1], rel=1e-5)
    if quantizer != "avq":  # a short Adam run leaves a least-squares step something to gain
        assert mses[-1] < mses[0]


def test_a_round_that_would_raise_the_error_is_not_kept(monkeypatch):
    """Codebooks the solve makes worse are thrown away: the quantizer keeps its codebooks."""
    import vqbench.training.refine as refine

    q = build_quantizer({"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 2, "beam_width": 1}, 4)
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(4))
    before = q.codebooks.detach().clone()
    monkeypatch.setattr(refine, "solve_codebooks", lambda x, codes, old, ridge: old + 100.0)
    stats = refine_codebooks(q, x, 2)
    assert stats["refine_rounds_kept"] == 0
    assert stats["refine_mse_0"] == stats["refine_mse_1"] == stats["refine_mse_2"]
    torch.testing.assert_close(q.codebooks.detach(), before)


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_refine_must_be_a_nonnegative_integer(value):
    ocfg = {**option_defaults("optimizer", "ste"), "refine": value}
    with pytest.raises(ConfigError, match=r"^optimizer\.refine must be"):
        optimizer_spec(ocfg).check_config(ocfg)


def test_refine_defaults_to_off():
    for name in ("nsvq", "ste"):
        assert option_defaults("optimizer", name)["refine"] == 0


def test_toy_cli_run_with_refine(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    res = subprocess.run([sys.executable, "-m", "vqbench", "quantizer=avq", "quantizer.beam_width=4",
                          "optimizer.refine=2", "optimizer.steps=30", "dataset.num_train=1024",
                          "dataset.num_test=256", "dataset.dim=16", "progress=false",
                          f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    mses = [metrics[f"train.refine_mse_{r}"] for r in range(3)]
    assert mses[2] <= mses[1] <= mses[0]
    assert "train.refine_rounds_kept" in metrics
    bad = subprocess.run([sys.executable, "-m", "vqbench", "optimizer.refine=-2", f"hydra.run.dir={tmp_path}/bad"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("vqbench: error: optimizer.refine must be >= 0")
