"""The optimised gradient loop follows the same learning curve as the plain algorithm.

The reference below is the training loop as first written, step for step: hard codes by
``||c||^2 - 2<x, c>`` and ``torch.argmin``, decoding by advanced indexing, the NSVQ loss
through the noise-substituted x_tilde, a Python-float running MSE read every step, and
the replacement bookkeeping with an index-put per batch. Same seed => the trained
codebooks and the running MSE must agree to float rounding.
"""

import math

import pytest
import torch

from vqbench.data.toy import make_toy_data
from vqbench.quantizers import build_quantizer
from vqbench.training import OPTIMIZERS
from vqbench.training.gradient import fit_gradient
from vqbench.training.nsvq import nsvq, nsvq_loss
from vqbench.training.ste import ste


def reference_encode(name, codebooks, x):
    M, K, d = codebooks.shape
    sq = codebooks.pow(2).sum(-1)
    if name == "pvq":
        sub = x.reshape(x.shape[0], M, d).transpose(0, 1)
        return torch.baddbmm(sq.unsqueeze(1), sub, codebooks.transpose(1, 2), alpha=-2.0).argmin(2).t()
    residual = x.clone()
    codes = torch.empty(x.shape[0], M, dtype=torch.long)
    for m in range(M):  # rvq (vq is its M = 1 case)
        codes[:, m] = torch.addmm(sq[m].unsqueeze(0), residual, codebooks[m].t(), alpha=-2.0).argmin(1)
        residual -= codebooks[m][codes[:, m]]
    return codes


def reference_decode(name, codebooks, codes):
    M = codebooks.shape[0]
    chosen = codebooks[torch.arange(M), codes]  # [N, M, d]
    return chosen.reshape(codes.shape[0], -1) if name == "pvq" else chosen.sum(1)


def reference_fit(name, codebooks_shape, data, ocfg, seed, beam_search=None):
    """The gradient loop of vqbench before its optimisation (random init, cosine or constant lr).
    AVQ codes come from ``beam_search`` (an AVQ whose codebooks are set to the current ones)."""
    iterations, batch_size = ocfg["steps"], ocfg["batch_size"]
    rep = ocfg["replacement"]
    generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator().manual_seed(seed + 1)
    scale = data.std().item()
    codebooks = torch.nn.Parameter(torch.randn(codebooks_shape, generator=generator) * (0.01 * scale))
    opt = torch.optim.Adam([codebooks], lr=ocfg["lr"] * scale)
    cosine = ocfg["lr_schedule"] == "cosine"
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda it: 0.5 * (1 + math.cos(math.pi * min(it, iterations) / iterations)) if cosine else 1.0)
    M, K, _ = codebooks_shape
    batches_used = torch.zeros(M, K)
    replaced = 0
    running, trajectory = None, []
    for it in range(iterations):
        batch = data[torch.randint(data.shape[0], (batch_size,), generator=generator)]
        with torch.no_grad():
            if beam_search is not None:
                beam_search.codebooks.data = codebooks.detach().clone()
                codes = beam_search.encode(batch)
            else:
                codes = reference_encode(name["quantizer"], codebooks, batch)
        x_hat = reference_decode(name["quantizer"], codebooks, codes)
        if name["optimizer"] == "nsvq":
            loss = (batch - nsvq(batch, x_hat, noise_generator)).pow(2).sum(1).mean()
        else:
            x_st, vq_loss = ste(batch, x_hat, ocfg["beta"])
            loss = (batch - x_st).pow(2).sum(1).mean() + vq_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        used = torch.zeros(M * K)
        used[(codes + torch.arange(M) * K).flatten()] = 1.0
        batches_used += used.view(M, K)
        if (it + 1) % rep["num_batches"] == 0:
            if it < iterations - 2 * rep["num_batches"]:
                dead = batches_used / rep["num_batches"] < rep["discard_threshold"]
                if dead.any():
                    with torch.no_grad():
                        cb = codebooks.data
                        weights = (~dead).float()
                        weights[weights.sum(1) == 0] = 1.0
                        source = torch.multinomial(weights, K, replacement=True, generator=generator)
                        copies = cb[torch.arange(M).unsqueeze(1), source]
                        perturb = torch.randn(copies.shape, generator=generator) * (cb.std() * rep["noise"])
                        cb[dead] = (copies + perturb)[dead]
                    replaced += int(dead.sum())
            batches_used.zero_()
        mse = (batch - x_hat.detach()).pow(2).sum(1).mean().item()
        running = mse if running is None else 0.98 * running + 0.02 * mse
        trajectory.append(mse)
    return codebooks.detach(), running, replaced, trajectory


@pytest.mark.parametrize(
    "quantizer,optimizer,schedule",
    [("rvq", "nsvq", "cosine"), ("pvq", "nsvq", "cosine"), ("vq", "nsvq", "constant"), ("rvq", "ste", "constant"),
     ("avq", "nsvq", "cosine")],
)
def test_learning_curve_matches_the_plain_loop(quantizer, optimizer, schedule):
    data = make_toy_data("correlated", 8, 0.9, 2048, 16, seed=4).train
    # A high discard threshold makes replacement fire, so its random draws are compared too.
    ocfg = {"name": optimizer, "steps": 50, "batch_size": 96, "lr": 0.05, "lr_schedule": schedule,
            "init": "random", "beta": 0.25, "noise_scope": "vector", "refine": 0,
            "replacement": {"enabled": True, "num_batches": 10, "discard_threshold": 0.3, "noise": 0.01}}
    qcfg = {"name": quantizer, "num_codebooks": 1 if quantizer == "vq" else 2, "bits_per_codebook": 4,
            "beam_width": 3}
    q = build_quantizer(qcfg, 8)
    trace = []
    stats = fit_gradient(q, data, ocfg, lambda quantizer, g: OPTIMIZERS[optimizer].estimator(quantizer, ocfg, g),
                         torch.device("cpu"), seed=11, progress=False, trace=trace)
    beam_search = build_quantizer({**qcfg, "beam_width": 3}, 8) if quantizer == "avq" else None
    ref_books, ref_mse, ref_replaced, ref_trajectory = reference_fit(
        {"quantizer": quantizer, "optimizer": optimizer}, tuple(q.codebooks.shape), data, ocfg, seed=11,
        beam_search=beam_search)
    assert ref_replaced > 0  # the replacement path ran
    assert stats["codewords_replaced"] == ref_replaced
    torch.testing.assert_close(q.codebooks.detach(), ref_books, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.stack(trace), torch.tensor(ref_trajectory, dtype=torch.float64), rtol=1e-5, atol=0)
    assert stats["train_mse"] == pytest.approx(ref_mse, rel=1e-5)


@pytest.mark.parametrize("dim", [2, 16, 128])
def test_nsvq_loss_is_the_loss_through_x_tilde(dim):
    """Same value and codebook gradient as ||x - x_tilde||^2 with the noise drawn."""
    g = torch.Generator().manual_seed(dim)
    x = torch.randn(512, dim, generator=g) * 3
    books = torch.randn(64, dim, generator=g, requires_grad=True)
    codes = torch.randint(0, 64, (512,), generator=g)
    loss, err2 = nsvq_loss(x, books[codes])
    loss.backward()
    ours, books.grad = books.grad, None
    x_hat = books[codes]
    reference = (x - nsvq(x, x_hat, torch.Generator().manual_seed(0))).pow(2).sum(1).mean()
    reference.backward()
    torch.testing.assert_close(loss, reference, rtol=1e-6, atol=0)
    torch.testing.assert_close(ours, books.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(err2, (x - x_hat).pow(2).sum(1).detach())
