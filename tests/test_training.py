"""Optimizers: every quantizer x optimizer lowers the error; estimators and replacement."""

import pytest
import torch

from vqbench.data.toy import make_toy_data
from vqbench.quantizers import build_quantizer
from vqbench.schema import option_defaults
from vqbench.training import fit
from vqbench.training.estimators import nsvq, ste
from vqbench.training.kmeans import least_squares_codebooks
from vqbench.training.replacement import CodewordReplacer

FAST_REPLACEMENT = {"num_batches": 20}
OPT = {
    "nsvq": option_defaults("optimizer", "nsvq", steps=60, batch_size=128, lr=0.02, lr_schedule="constant",
                            replacement=FAST_REPLACEMENT),
    "ste": option_defaults("optimizer", "ste", steps=60, batch_size=128, lr=0.02, replacement=FAST_REPLACEMENT),
    "kmeans": option_defaults("optimizer", "kmeans", lloyd_iterations=10, alternations=2),
}


def mse(q, x):
    with torch.no_grad():
        return (x - q.decode(q.encode(x))).pow(2).sum(1).mean().item()


@pytest.mark.parametrize("optimizer", ["nsvq", "ste", "kmeans"])
@pytest.mark.parametrize("quantizer", ["vq", "rvq", "pvq", "avq"])
def test_every_combination_trains(quantizer, optimizer):
    data = make_toy_data("correlated", 8, 0.9, 2048, 512, seed=0)
    cfg = {"name": quantizer, "num_codebooks": 1 if quantizer == "vq" else 2, "bits_per_codebook": 4,
           "beam_width": 4}
    torch.manual_seed(0)
    q = build_quantizer(cfg, 8)
    q.codebooks.data = torch.randn_like(q.codebooks) * 0.1  # untrained
    before = mse(q, data.test)
    fit(q, data.train, OPT[optimizer], torch.device("cpu"), seed=0, progress=False)
    after = mse(q, data.test)
    assert after < 0.7 * before, (before, after)


def test_training_is_deterministic_given_seed():
    data = make_toy_data("uncorrelated", 8, 0.0, 1024, 256, seed=1)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        q = build_quantizer({"name": "avq", "num_codebooks": 2, "bits_per_codebook": 3, "beam_width": 4}, 8)
        fit(q, data.train, OPT["nsvq"], torch.device("cpu"), seed=7, progress=False)
        results.append(q.codebooks.detach().clone())
    assert torch.equal(results[0], results[1])


def test_nsvq_noise_has_the_error_norm_and_passes_gradients():
    x = torch.randn(64, 10)
    codebooks = torch.randn(16, 10, requires_grad=True)
    idx = torch.cdist(x, codebooks.detach()).argmin(1)
    x_hat = codebooks[idx]
    x_tilde = nsvq(x, x_hat, torch.Generator().manual_seed(0))
    assert torch.allclose((x_tilde - x).norm(dim=1), (x - x_hat).norm(dim=1), rtol=1e-5)
    assert not torch.allclose(x_tilde, x_hat)  # a random direction, not the codeword
    (x - x_tilde).pow(2).sum().backward()
    used = torch.zeros(16, dtype=torch.bool)
    used[idx] = True
    assert codebooks.grad[used].abs().sum() > 0
    assert codebooks.grad[~used].abs().sum() == 0


def test_ste_forward_is_x_hat_and_backward_is_identity():
    x = torch.randn(5, 3, requires_grad=True)
    x_hat = torch.randn(5, 3, requires_grad=True)
    out, loss = ste(x, x_hat, beta=0.5)
    assert torch.allclose(out, x_hat)
    out.sum().backward(retain_graph=True)
    assert torch.equal(x.grad, torch.ones(5, 3)) and x_hat.grad is None
    x.grad = None
    loss.backward()
    # d/dx_hat ||sg[x]-x_hat||^2/N = 2(x_hat - x)/N ; d/dx 0.5 ||x - sg[x_hat]||^2/N = (x - x_hat)/N
    assert torch.allclose(x_hat.grad, 2 * (x_hat - x).detach() / 5)
    assert torch.allclose(x.grad, (x - x_hat).detach() / 5)


def test_replacement_moves_dead_codewords_next_to_live_ones():
    cb = torch.nn.Parameter(torch.tensor([[[0.0, 0.0], [10.0, 10.0], [100.0, 100.0], [5.0, -5.0]]]))
    rep = CodewordReplacer(cb, num_batches=2, discard_threshold=0.5, noise=0.001,
                           generator=torch.Generator().manual_seed(0))
    for it in range(2):
        rep.record(torch.tensor([[0], [1], [1]]))
        replaced = rep.maybe_replace(it, total_batches=100)
    assert replaced == 2
    live = cb.data[0, :2]
    for k in (2, 3):  # each dead codeword is now close to a live one
        assert torch.cdist(cb.data[0, k : k + 1], live).min() < 0.5
    assert torch.equal(cb.data[0, :2], torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    assert rep.batches_used.sum() == 0


def test_replacement_stops_near_the_end():
    cb = torch.nn.Parameter(torch.zeros(1, 4, 2))
    rep = CodewordReplacer(cb, num_batches=10, discard_threshold=0.5)
    rep.record(torch.tensor([[0]]))
    assert rep.maybe_replace(89, total_batches=100) == 0  # 89 >= 100 - 2*10


def test_least_squares_recovers_exact_codebooks():
    torch.manual_seed(0)
    M, K, D = 2, 4, 3
    true = torch.randn(M, K, D)
    codes = torch.randint(0, K, (400, M))
    x = true[torch.arange(M), codes].sum(1)
    est = least_squares_codebooks(x, codes, torch.zeros(M, K, D), ridge=1e-9)
    # additive codebooks are defined up to moving a constant between codebooks
    recon = est[torch.arange(M), codes].sum(1)
    assert torch.allclose(recon, x, atol=1e-4)


def test_gradient_training_is_invariant_to_the_data_scale():
    """lr and the random init are in units of the data's std: 100x data -> 100x codebooks."""
    data = make_toy_data("correlated", 8, 0.9, 1024, 256, seed=2)
    cfg = {"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 3, "beam_width": 1}
    books = []
    for scale in (1.0, 100.0):
        q = build_quantizer(cfg, 8)
        fit(q, data.train * scale, OPT["nsvq"], torch.device("cpu"), seed=3, progress=False)
        books.append(q.codebooks.detach() / scale)
    assert torch.allclose(books[0], books[1], rtol=1e-3, atol=1e-4)
