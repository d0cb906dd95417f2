"""Gradient estimators beyond NSVQ/STE (vqbench/training/{rotation,diveq,gumbel,ema_raw}.py):
each checked against an answer computed by hand or from its defining formula."""

from __future__ import annotations

import math

import pytest
import torch

from vqbench.quantizers import PVQ, RVQ, VQ
from vqbench.training.diveq import diveq
from vqbench.training.ema import EMACodebooks as RawEMA
from vqbench.training.ema import ema_straight_through
from vqbench.training.gumbel import gumbel_noise, gumbel_quantize, gumbel_select
from vqbench.training.rotation import rotate_to, rotation_trick

f64 = torch.float64


# ---------------------------------------------------------------------------- rotation trick
def test_rotation_hand_case_value_and_gradient():
    # u = e1, q = e2: R is the quarter turn e1 -> e2, e2 -> -e1, lambda = 3/2.
    x = torch.tensor([[2.0, 0.0, 0.0]], dtype=f64, requires_grad=True)
    x_hat = torch.tensor([[0.0, 3.0, 0.0]], dtype=f64, requires_grad=True)
    out = rotate_to(x, x_hat)
    assert torch.allclose(out, x_hat.detach())
    g = torch.tensor([[1.0, 2.0, 3.0]], dtype=f64)
    out.backward(g)
    # lambda R^T g = 1.5 * [g2, -g1, g3]
    assert torch.allclose(x.grad, torch.tensor([[3.0, -1.5, 4.5]], dtype=f64))
    assert x_hat.grad is None or torch.all(x_hat.grad == 0)


def test_rotation_matches_explicit_matrix_on_random_vectors():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, generator=gen, dtype=f64, requires_grad=True)
    x_hat = torch.randn(5, 6, generator=gen, dtype=f64)
    g = torch.randn(5, 6, generator=gen, dtype=f64)
    out = rotate_to(x, x_hat)
    out.backward(g)
    for i in range(5):
        xi, qi = x[i].detach(), x_hat[i]
        u, q = xi / xi.norm(), qi / qi.norm()
        r = (u + q) / (u + q).norm()
        R = torch.eye(6, dtype=f64) - 2 * torch.outer(r, r) + 2 * torch.outer(q, u)
        assert torch.allclose(R.T @ R, torch.eye(6, dtype=f64), atol=1e-12)  # a rotation
        assert torch.allclose(R @ u, q, atol=1e-12)
        lam = qi.norm() / xi.norm()
        assert torch.allclose(out[i].detach(), qi, atol=1e-12)
        assert torch.allclose(x.grad[i], lam * R.T @ g[i], atol=1e-12)


def test_rotation_opposite_and_zero_vectors_stay_finite():
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]], requires_grad=True)
    x_hat = torch.tensor([[-2.0, 0.0], [1.0, 1.0]])
    out = rotate_to(x, x_hat)
    assert torch.allclose(out[0], x_hat[0])
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_rotation_trick_loss_is_codebook_plus_commitment():
    x = torch.tensor([[1.0, 2.0]])
    c = torch.tensor([[0.0, 0.0]], requires_grad=True)
    _, loss = rotation_trick(x, c, beta=0.5)
    assert loss.item() == pytest.approx(1.5 * 5.0)
    loss.backward()
    assert torch.allclose(c.grad, torch.tensor([[-2.0, -4.0]]))  # d/dc ||x - c||^2 (codebook term only)


# ---------------------------------------------------------------------------- DiVeQ
def test_diveq_hand_case_without_noise():
    x = torch.tensor([[0.0, 0.0]], dtype=f64, requires_grad=True)
    x_hat = torch.tensor([[3.0, 4.0]], dtype=f64, requires_grad=True)
    out = diveq(x, x_hat, noise_std=0.0)
    assert torch.allclose(out, x_hat.detach())
    out.backward(torch.tensor([[1.0, 0.0]], dtype=f64))
    # d = (0.6, 0.8), d.g = 0.6: dL/dx = g - (d.g) d, dL/dx_hat = (d.g) d
    assert torch.allclose(x.grad, torch.tensor([[0.64, -0.48]], dtype=f64))
    assert torch.allclose(x_hat.grad, torch.tensor([[0.36, 0.48]], dtype=f64))


def test_diveq_noise_keeps_error_length_and_bends_direction_slightly():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200, 8, generator=gen)
    x_hat = x + torch.randn(200, 8, generator=gen)
    out = diveq(x, x_hat, noise_std=1e-3 ** 0.5, generator=torch.Generator().manual_seed(2))
    assert torch.allclose((out - x).norm(dim=1), (x_hat - x).norm(dim=1), rtol=1e-5)
    cos = torch.nn.functional.cosine_similarity(out - x, x_hat - x, dim=1)
    assert cos.min() > 0.95 and cos.max() < 1.0 - 1e-7  # noisy, but pointing at the codeword


def test_diveq_noise_std_is_the_authors_noise_var():
    """The authors' code adds Normal(0, noise_var).sample() to x_hat - x: a standard deviation of
    noise_var (1e-3). Ours: noise_std, default 1e-3; the layers' sigma2 is a variance."""
    from vqbench.training.diveq import DEFAULT_NOISE_STD, DiVeQConfig

    assert DEFAULT_NOISE_STD == DiVeQConfig.noise_std == 1e-3
    gen = torch.Generator().manual_seed(3)
    x, x_hat = torch.randn(50, 4, generator=gen), torch.randn(50, 4, generator=gen)
    out = diveq(x, x_hat, noise_std=0.2, generator=torch.Generator().manual_seed(4))
    direction = (x_hat - x) + 0.2 * torch.randn(50, 4, generator=torch.Generator().manual_seed(4))
    expected = x + (x_hat - x).norm(dim=1, keepdim=True) * direction / direction.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out, expected)
    import vqbench

    assert vqbench.VQ(4, codebook_size=4, estimator="diveq").estimator.noise_std == 1e-3
    assert vqbench.VQ(4, codebook_size=4, estimator="diveq", sigma2=1e-2).estimator.noise_std == pytest.approx(0.1)
    with pytest.raises(ValueError, match="noise_std or sigma2"):
        vqbench.VQ(4, codebook_size=4, estimator="diveq", sigma2=1e-2, noise_std=0.5)


# ---------------------------------------------------------------------------- Gumbel-softmax
def test_gumbel_samples_follow_softmax_of_scaled_distances():
    # target 0, codewords at squared distances 1 and 2: p(nearest) = 1 / (1 + e^(-1/T)).
    n = 20000
    target = torch.zeros(n, 1)
    codebook = torch.tensor([[1.0], [math.sqrt(2.0)]])
    for temperature in (1.0, 0.5):
        _, index = gumbel_select(target, codebook, temperature, torch.Generator().manual_seed(3))
        expected = 1.0 / (1.0 + math.exp(-1.0 / temperature))
        assert (index == 0).double().mean().item() == pytest.approx(expected, abs=0.015)


def test_gumbel_forward_is_hard_and_gradient_is_the_softmax_relaxation():
    gen = torch.Generator().manual_seed(4)
    target = torch.randn(6, 3, generator=gen, dtype=f64, requires_grad=True)
    codebook = torch.randn(5, 3, generator=gen, dtype=f64, requires_grad=True)
    g = torch.randn(6, 3, generator=gen, dtype=f64)
    out, index = gumbel_select(target, codebook, 0.7, torch.Generator().manual_seed(5))
    assert torch.equal(out.detach(), codebook.detach()[index])
    grad_t, grad_c = torch.autograd.grad((out * g).sum(), (target, codebook))

    # Reference: hard forward, backward of softmax(-d/T + noise) @ C (+ the hard selection for C).
    noise = gumbel_noise(torch.Size([6, 5]), torch.empty((), dtype=f64), torch.Generator().manual_seed(5))
    t, c = target.detach().requires_grad_(), codebook.detach().requires_grad_()
    dist = ((t.unsqueeze(1) - c.unsqueeze(0)) ** 2).sum(-1)
    soft = (-dist / 0.7 + noise).softmax(-1)
    hard = torch.nn.functional.one_hot(index, 5).to(f64)
    ref = ((hard + soft - soft.detach()) @ c * g).sum()
    ref_t, ref_c = torch.autograd.grad(ref, (t, c))
    assert torch.allclose(grad_t, ref_t) and torch.allclose(grad_c, ref_c)
    assert grad_t.abs().sum() > 0


@pytest.mark.parametrize("cls,args", [(VQ, (6, 4)), (RVQ, (6, 3, 4)), (PVQ, (6, 3, 4))])
def test_gumbel_at_low_temperature_is_the_hard_quantizer(cls, args):
    q = cls(*args)
    gen = torch.Generator().manual_seed(6)
    q.codebooks.data = torch.randn(q.codebooks.shape, generator=gen)
    x = torch.randn(300, 6, generator=gen)
    codes = q.encode(x)
    out, sampled = gumbel_quantize(q, x, codes, temperature=1e-4, generator=gen)
    assert torch.equal(sampled, codes)
    assert torch.allclose(out, q.decode(codes), atol=1e-5)
    out_hot, sampled_hot = gumbel_quantize(q, x, codes, temperature=10.0, generator=gen)
    assert (sampled_hot != codes).any()  # a high temperature samples other codewords


# ---------------------------------------------------------------------------- EMA on raw vectors
def test_ema_with_decay_zero_moves_codewords_to_the_mean_of_their_vectors():
    q = VQ(2, 1)
    q.codebooks.data = torch.tensor([[[0.0, 0.0], [10.0, 10.0]]])
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 2.0], [9.0, 9.0], [11.0, 12.0]])
    ema = RawEMA(q, decay=0.0)
    codes = ema.step(x)
    assert codes[:, 0].tolist() == [0, 0, 0, 1, 1]
    expected = torch.tensor([[0.0, 1.0], [10.0, 10.5]])
    assert torch.allclose(q.codebooks.data[0], expected, atol=1e-4)


def test_ema_rvq_second_stage_averages_residuals_and_decay_mixes_old_and_new():
    q = RVQ(1, 2, 1)
    q.codebooks.data = torch.tensor([[[0.0], [10.0]], [[-1.0], [1.0]]])
    x = torch.tensor([[0.5], [0.8], [10.4], [9.0]])
    codes = q.encode(x)
    RawEMA(q, decay=0.0).step(x, codes)
    # stage 0: means of {0.5, 0.8} and {10.4, 9.0}; stage 1 from the residuals x - C0[old codes]
    assert torch.allclose(q.codebooks.data[0, :, 0], torch.tensor([0.65, 9.7]), atol=1e-4)
    assert torch.allclose(q.codebooks.data[1, :, 0], torch.tensor([-1.0, 0.5667]), atol=1e-3)
    q2 = VQ(1, 1)
    q2.codebooks.data = torch.tensor([[[0.0], [5.0]]])
    RawEMA(q2, decay=0.5).step(torch.tensor([[2.0], [2.0], [2.0]]))
    # counts 0.5*1 + 0.5*3 = 2, sums 0.5*0 + 0.5*6 = 3: codeword 1.5 (up to Laplace smoothing)
    assert q2.codebooks.data[0, 0, 0].item() == pytest.approx(1.5, abs=1e-4)


def test_ema_straight_through_passes_identity_gradient_and_none_to_codebooks():
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    c = torch.tensor([[0.0, 1.0]], requires_grad=True)
    out, loss = ema_straight_through(x, c, beta=0.5)
    assert torch.allclose(out, c.detach())
    assert loss.item() == pytest.approx(0.5 * 1.0)  # a mean over elements, like F.mse_loss
    (out.sum() + loss).backward()
    assert torch.allclose(x.grad, torch.tensor([[1.0, 1.0]]) + 0.5 * torch.tensor([[1.0, 1.0]]))
    assert c.grad is None
