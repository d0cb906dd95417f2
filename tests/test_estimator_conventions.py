"""Conventions named and checked by hand: the rotation trick's two forms on RVQ (total x_hat vs
vector-quantize-pytorch's per-stage ResidualVQ), its x = 0 case, SF-DiVeQ, and the light import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import vqbench
from vqbench.training.rotation import rotate_to


def _rvq_two_stages(form: str):
    """RVQ, D = 2, two stages of two codewords: stage 0 picks (0, 2), stage 1 picks (1, -2)."""
    layer = vqbench.RVQ(2, num_codebooks=2, codebook_size=2, estimator="rotation", rotation_form=form,
                        replacement=False)
    with torch.no_grad():
        layer.codebooks.copy_(torch.tensor([[[0.0, 2.0], [-5.0, -5.0]], [[1.0, -2.0], [9.0, 9.0]]]))
    layer.initialized.fill_(True)
    return layer


@pytest.mark.parametrize("form,expected", [("total", [1.0, 0.0]), ("per_stage", [1.0, -2.0])])
def test_rotation_forms_on_a_hand_computed_rvq_case(form, expected):
    """x = (1, 0). Stage 0: r0 = x onto q0 = (0, 2): lambda0 = 2, R0 = rotation by +90 degrees.
    Stage 1: r1 = x - q0 = (1, -2) onto q1 = (1, -2): lambda1 = 1, R1 = I. x_hat = q0 + q1 = (1, 0) = x.

    total:     x onto x_hat = x: lambda = 1, R = I, gradient g = (1, 0).
    per_stage: lambda0 R0^T g + lambda1 R1^T g = 2 (0, -1) + (1, 0) = (1, -2)."""
    layer = _rvq_two_stages(form)
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    out = layer(x)
    assert out.codes.tolist() == [[0, 0]]
    torch.testing.assert_close(out.x_hat.detach(), torch.tensor([[1.0, 0.0]]))
    (out.x_hat * torch.tensor([[1.0, 0.0]])).sum().backward()  # g = (1, 0)
    torch.testing.assert_close(x.grad, torch.tensor([expected]))


def test_rotation_per_stage_is_the_total_form_for_one_codebook():
    torch.manual_seed(0)
    x = torch.randn(16, 4, requires_grad=True)
    grads = []
    for form in ("total", "per_stage"):
        layer = vqbench.VQ(4, codebook_size=8, estimator="rotation", rotation_form=form, replacement=False)
        torch.manual_seed(1)
        layer.init_from_data(x.detach())
        x.grad = None
        layer(x).x_hat.pow(2).sum().backward()
        grads.append(x.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_rotation_at_zero_input_passes_straight_through():
    x = torch.zeros(1, 3, requires_grad=True)
    x_hat = torch.tensor([[1.0, 2.0, 2.0]])
    out = rotate_to(x, x_hat)
    torch.testing.assert_close(out.detach(), x_hat)
    g = torch.tensor([[0.5, -1.0, 3.0]])
    (out * g).sum().backward()
    torch.testing.assert_close(x.grad, g)  # not ||x_hat|| / 1e-12 times g
    zero_hat = rotate_to(torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True), torch.zeros(1, 3))
    torch.testing.assert_close(zero_hat.detach(), torch.zeros(1, 3))


def test_sf_diveq_value_lies_on_a_segment_and_reaches_both_ends():
    torch.manual_seed(0)
    layer = vqbench.VQ(2, codebook_size=4, estimator="sf_diveq", noise_std=0.0, replacement=False)
    with torch.no_grad():
        layer.codebooks.copy_(torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]))
    layer.initialized.fill_(True)
    x = torch.tensor([[0.5, 0.1], [0.9, 0.6]])
    out = layer(x)
    # noise_std = 0: the value is the dithered point (1 - s) c_j + s c_{j+1}, on the chain's segments
    on_segment = (out.x_hat[:, 1].abs() < 1e-6) | ((out.x_hat[:, 0] - 1).abs() < 1e-6) | ((out.x_hat[:, 1] - 1).abs() < 1e-6)
    assert on_segment.all()
    out.x_hat.sum().backward()
    assert (layer.codebooks.grad.abs().sum(-1) > 0).sum() >= 2  # both ends of a segment get gradients
    with pytest.raises(ValueError, match="sf_diveq runs on VQ and PVQ"):
        vqbench.AVQ(4, num_codebooks=2, codebook_size=4, estimator="sf_diveq")


def test_residual_sf_diveq_by_hand():
    """RVQ, 2 stages of 3 codewords in 2-D, noise 0, dithers fixed by the generator: stage 1 picks
    the dithered point nearest to x, stage 2 the one nearest to the residual; the value is their
    sum, the codes the nearer ends; the gradient reaches both ends of each picked segment."""
    from vqbench.training.diveq import residual_sf_diveq

    books = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]],
                          [[0.0, 0.0], [0.0, 0.5], [0.5, 0.5]]], requires_grad=True)
    x = torch.tensor([[1.9, 1.3], [0.2, 0.1]], requires_grad=True)
    seed = 7
    lam = [torch.rand((2, 1), generator=g) for g in [torch.Generator().manual_seed(seed)] for _ in range(2)]
    p1 = (1 - lam[0]) * books[0, :-1].detach() + lam[0] * books[0, 1:].detach()
    seg1 = ((x.detach()[:, None] - p1[None]) ** 2).sum(-1).argmin(1)
    r = x.detach() - p1[seg1]
    p2 = (1 - lam[1]) * books[1, :-1].detach() + lam[1] * books[1, 1:].detach()
    seg2 = ((r[:, None] - p2[None]) ** 2).sum(-1).argmin(1)
    expected = p1[seg1] + p2[seg2]
    out, codes = residual_sf_diveq(x, books, 0.0, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(out.detach(), expected)
    ends = torch.stack([torch.where(lam[i][s, 0] < 0.5, s, s + 1) for i, s in enumerate((seg1, seg2))], 1)
    assert torch.equal(codes, ends)
    (out * (out.detach() - x.detach())).sum().backward()  # g along s - x: u.g = ||s - x|| > 0
    for i, s in enumerate((seg1, seg2)):
        touched = books.grad[i].abs().sum(-1) > 0
        assert touched[s].all() and touched[s + 1].all()
    layer = vqbench.RVQ(2, num_codebooks=2, codebook_size=3, estimator="sf_diveq", noise_std=0.0, replacement=False)
    assert layer.estimator.residual


def test_any_codebook_size_and_kmeans_init():
    layer = vqbench.RVQ(4, num_codebooks=2, codebook_size=5, init="data")
    assert layer.codebooks.shape == (2, 5, 4) and layer.bits == pytest.approx(2 * 2.321928, rel=1e-6)
    out = layer(torch.randn(64, 4))
    assert out.codes.max() < 5 and bool(layer.initialized)
    km = vqbench.VQ(3, codebook_size=6, init="kmeans")
    x = torch.randn(200, 3)
    km(x)
    assert bool(km.initialized) and torch.isfinite(km.codebooks).all()
    assert "replacer.window" in km.state_dict() and "initialized" in km.state_dict()


def test_importing_and_using_a_layer_loads_torch_only():
    code = ("import vqbench, sys; vqbench.RVQ(dim=8, codebook_size=16)(__import__('torch').randn(4, 8)); "
            "print(sorted({'faiss', 'hydra', 'omegaconf', 'numba'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_residual_sf_diveq_matches_the_authors_package():
    """With the authors' package installed (``pip install -e '.[peers]'``): their
    ``ResidualSFDIVEQ`` past its warm-up and ours give the same value and gradients, bit for bit,
    from the same global random state (dithers, then the direction noise)."""
    package = pytest.importorskip("diveq.residual_sf_diveq")
    from vqbench.training.diveq import residual_sf_diveq

    torch.manual_seed(0)
    theirs = package.ResidualSFDIVEQ(16, 8, 3, noise_var=1e-3, skip_iters=1, avg_iters=0, replacement_iters=1,
                                     verbose=False, allow_warning=False)
    with torch.no_grad():
        theirs.codebook.copy_(torch.randn(3, 16, 8))
    x, g = torch.randn(64, 8, requires_grad=True), torch.randn(64, 8)
    torch.manual_seed(5)
    value, segments, _ = theirs(x)
    (value * g).sum().backward()
    x_grad, x.grad = x.grad.clone(), None
    books = theirs.codebook.detach().clone().requires_grad_()
    torch.manual_seed(5)
    out, codes = residual_sf_diveq(x, books, 1e-3, None)
    (out * g).sum().backward()
    assert torch.equal(out, value) and torch.equal(x.grad, x_grad) and torch.equal(books.grad, theirs.codebook.grad)
    segments = torch.stack(segments, 1)
    assert ((codes == segments) | (codes == segments + 1)).all()  # ours: the nearer end of their segment
