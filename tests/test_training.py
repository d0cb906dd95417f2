"""Optimizers: every quantizer x optimizer lowers the error; estimators and replacement."""

import pytest
import torch

from vqbench.data.toy import make_toy_data
from vqbench.quantizers import build_quantizer
from vqbench.quantizers.kmeans import least_squares_codebooks
from vqbench.run.schema import option_defaults
from vqbench.training import fit
from vqbench.training.nsvq import nsvq
from vqbench.training.replacement import CodewordReplacer
from vqbench.training.ste import ste

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


TRAINED = {n: option_defaults("optimizer", n, steps=500, batch_size=128, replacement={"num_batches": 50})
           for n in ("nsvq", "ste")}
TRAINED["kmeans"] = option_defaults("optimizer", "kmeans", alternations=2)


@pytest.mark.parametrize("quantizer", ["vq", "rvq", "pvq", "avq"])
def test_every_optimizer_reaches_the_classical_fit(quantizer):
    """On 8-dim Gaussian data every optimizer lands within 10% of the best of the three (the
    classical fit or better) and never below the rate-distortion bound, which no quantizer of
    that many bits can beat."""
    from vqbench.metrics.rate_distortion import gaussian_rd_distortion

    data = make_toy_data("correlated", 8, 0.9, 2048, 512, seed=0)
    cfg = {"name": quantizer, "num_codebooks": 1 if quantizer == "vq" else 2, "bits_per_codebook": 4,
           "beam_width": 4}
    errors = {}
    for optimizer, ocfg in TRAINED.items():
        torch.manual_seed(0)
        q = build_quantizer(cfg, 8)
        fit(q, data.train, ocfg, torch.device("cpu"), seed=0, progress=False)
        errors[optimizer] = mse(q, data.test)
    bound = gaussian_rd_distortion(data.eigenvalues, q.bits)
    best = min(errors.values())
    assert all(bound < e <= 1.1 * best for e in errors.values()), (errors, bound)


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
    q = _Books([[[0.0, 0.0], [10.0, 10.0], [100.0, 100.0], [5.0, -5.0]]])
    cb = q.codebooks
    rep = CodewordReplacer(q, num_batches=2, discard_threshold=0.5, noise=0.001,
                           generator=torch.Generator().manual_seed(0))
    for it in range(2):
        rep.record(torch.tensor([[0], [1], [1]]))
        replaced = rep.maybe_replace(batches_left=100 - it - 1)
        assert (replaced is None) == (it == 0)  # the window closes after num_batches batches
    assert replaced.tolist() == [[False, False, True, True]] and rep.total_replaced == 2
    live = cb.data[0, :2]
    for k in (2, 3):  # each dead codeword is now close to a live one
        assert torch.cdist(cb.data[0, k : k + 1], live).min() < 0.5
    assert torch.equal(cb.data[0, :2], torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    assert rep.batches_used.sum() == 0


def test_replacement_stops_near_the_end():
    rep = CodewordReplacer(_Books(torch.zeros(1, 4, 2).tolist()), num_batches=10, discard_threshold=0.5, noise=0.01)
    for _ in range(10):
        rep.record(torch.tensor([[0]]))
    assert not rep.maybe_replace(batches_left=100 - 89 - 1).any()  # 89 >= 100 - 2*10: the window closes, no replacement
    assert rep.total_replaced == 0 and int(rep.window) == 0


def test_replacement_state_is_in_the_state_dict():
    rep = CodewordReplacer(_Books(torch.zeros(1, 4, 2).tolist()), num_batches=10, discard_threshold=0.5, noise=0.01)
    rep.record(torch.tensor([[1]]))
    assert set(rep.state_dict()) == {"batches_used", "window", "replaced"}
    assert int(rep.state_dict()["window"]) == 1


class _Books(torch.nn.Module):
    def __init__(self, books):
        super().__init__()
        self.codebooks = torch.nn.Parameter(torch.tensor(books))


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


@pytest.mark.parametrize("bits, optimum", [(1, 0.3634), (2, 0.1175)])
def test_kmeans_reaches_the_lloyd_max_optimum_of_a_gaussian(bits, optimum):
    """Scalar quantization of N(0, 1): Lloyd-Max's optimal MSE is 0.3634 at 1 bit, 0.1175 at
    2 bits (Max 1960). The k-means fit must get there on an independent test sample."""
    g = torch.Generator().manual_seed(bits)
    train, test = torch.randn(200_000, 1, generator=g), torch.randn(200_000, 1, generator=g)
    q = build_quantizer({"name": "vq", "num_codebooks": 1, "bits_per_codebook": bits, "beam_width": 1}, 1)
    fit(q, train, option_defaults("optimizer", "kmeans", lloyd_iterations=100), torch.device("cpu"), seed=0,
        progress=False)
    assert mse(q, test) == pytest.approx(optimum, rel=0.01)


@pytest.mark.parametrize("quantizer", ["vq", "rvq", "pvq", "avq"])
def test_nsvq_and_ste_compute_the_same_codebook_gradient_on_raw_vectors(quantizer):
    """The README's claim: without an encoder in front, NSVQ's loss ||x - x~||^2 equals
    ||x - x^||^2 and STE's losses give the codebooks the gradient of ||sg[x] - x^||^2, so both
    estimators (as gradient.py uses them) give the same codebook gradient."""
    from vqbench.training import OPTIMIZERS

    torch.manual_seed(0)
    q = build_quantizer({"name": quantizer, "num_codebooks": 1 if quantizer == "vq" else 2, "bits_per_codebook": 3,
                         "beam_width": 4}, 8)
    q.codebooks.data = torch.randn_like(q.codebooks)
    x = torch.randn(256, 8)

    def grad(loss_of):
        q.codebooks.grad = None
        loss_of(q.decode(q.encode(x))).backward()
        return q.codebooks.grad.clone()

    noisy = grad(lambda x_hat: (x - nsvq(x, x_hat, torch.Generator().manual_seed(1))).pow(2).sum(1).mean())
    def raw(name, x_hat, **settings):  # what training uses: the estimator's raw_loss
        return OPTIMIZERS[name].estimator(q, settings, None).raw_loss(x, x_hat, q.encode(x))[0]

    trained_nsvq = grad(lambda x_hat: raw("nsvq", x_hat, noise_scope="vector"))
    trained_ste = grad(lambda x_hat: raw("ste", x_hat, beta=0.25))
    assert noisy.abs().sum() > 0
    assert torch.allclose(noisy, trained_nsvq, rtol=1e-5, atol=1e-6)  # the noise-free form is NSVQ's loss
    assert torch.allclose(noisy, trained_ste, rtol=1e-5, atol=1e-6)


def test_nsvq_and_ste_train_the_same_codebooks_on_raw_vectors():
    data = make_toy_data("correlated", 8, 0.9, 2048, 16, seed=4)
    books = []
    for name in ("nsvq", "ste"):
        q = build_quantizer({"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 3, "beam_width": 1}, 8)
        ocfg = option_defaults("optimizer", name, steps=60, batch_size=128, replacement=FAST_REPLACEMENT)
        fit(q, data.train, ocfg, torch.device("cpu"), seed=5, progress=False)
        books.append(q.codebooks.detach())
    assert torch.allclose(books[0], books[1], atol=1e-4)


def test_aq_alternations_never_raise_the_training_error():
    """Each round (beam-search encode, ridge least squares) keeps or lowers the training MSE,
    also at beam width 1 where the search alone can find worse codes than the last round's."""
    from vqbench.quantizers.kmeans import alternate_least_squares, fit_residual_kmeans

    for seed, width in [(1, 1), (2, 1), (3, 2)]:
        x = make_toy_data("correlated", 16, 0.9, 4096, 16, seed=seed).train
        q = build_quantizer({"name": "avq", "num_codebooks": 4, "bits_per_codebook": 4, "beam_width": width}, 16)
        fit_residual_kmeans(q, x.numpy(), 10, seed, False)
        start = mse(q, x)
        history: list[float] = []
        alternate_least_squares(q, x, 8, False, history)
        assert history[0] <= start * (1 + 1e-6)
        assert all(b <= a * (1 + 1e-6) for a, b in zip(history, history[1:])), history
        assert history[-1] < 0.9 * start


def test_fresh_batches_do_not_overfit_a_small_training_set():
    """128 codewords on 256 fixed 4-dim vectors overfit: the training error falls far below the
    error on new data. Drawing every batch fresh from the source (dataset.fresh_batches, the
    authors' protocol) trains for the source instead: a lower test error, and a running training
    error that estimates it."""
    data = make_toy_data("uncorrelated", 4, 0.0, 256, 20_000, seed=0)
    ocfg = option_defaults("optimizer", "nsvq", steps=300, batch_size=256, lr=0.05, lr_schedule="cosine",
                           replacement={"num_batches": 50})
    train, test = {}, {}
    for fresh in (False, True):
        torch.manual_seed(0)
        q = build_quantizer({"name": "vq", "num_codebooks": 1, "bits_per_codebook": 7}, 4)
        stats = fit(q, data.train, ocfg, torch.device("cpu"), seed=0, progress=False,
                    batches=data.batches() if fresh else None)
        train[fresh], test[fresh] = stats["train_mse"], mse(q, data.test)
    assert train[False] < 0.5 * test[False]  # memorised the 256 vectors
    assert test[True] < 0.9 * test[False]
    assert train[True] == pytest.approx(test[True], rel=0.1)


def test_kmeans_refuses_a_stream_of_fresh_batches():
    data = make_toy_data("uncorrelated", 4, 0.0, 256, 10, seed=0)
    q = build_quantizer({"name": "vq", "num_codebooks": 1, "bits_per_codebook": 2}, 4)
    with pytest.raises(ValueError, match="fixed training set"):
        fit(q, data.train, OPT["kmeans"], torch.device("cpu"), seed=0, progress=False, batches=data.batches())


def test_uniform_init_is_the_authors_absolute_start():
    """optimizer.init=uniform: U(-1/K, 1/K) whatever the data's scale (the NSVQ authors' start)."""
    from vqbench.training.init import initialize_codebooks

    q = build_quantizer({"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 4, "beam_width": 1}, 8)
    data = torch.randn(512, 8) * 1000.0  # a scale the start must ignore
    initialize_codebooks(q, data, "uniform", torch.Generator().manual_seed(0))
    books = q.codebooks.detach()
    assert books.abs().max() <= 1 / 16 and books.abs().max() > 0.9 / 16  # fills the interval, K = 16
    assert abs(books.mean().item()) < 0.01 and books.std().item() == pytest.approx((1 / 16) / 3**0.5, rel=0.15)


def test_nsvq_noise_per_part_has_each_parts_error_norm():
    """noise_scope=part: x~ - x has, in every independently coded slice, that slice's error norm;
    parts=1 is the usual NSVQ, drawn from the same random stream."""
    g = torch.Generator().manual_seed(0)
    x, x_hat = torch.randn(5, 12, generator=g), torch.randn(5, 12, generator=g)
    per_part = nsvq(x, x_hat, torch.Generator().manual_seed(1), parts=3) - x
    assert torch.allclose(per_part.view(5, 3, 4).norm(dim=2), (x - x_hat).view(5, 3, 4).norm(dim=2), atol=1e-5)
    whole = nsvq(x, x_hat, torch.Generator().manual_seed(1)) - x
    assert torch.allclose(whole.norm(dim=1), (x - x_hat).norm(dim=1), atol=1e-5)
    assert not torch.allclose(whole.view(5, 3, 4).norm(dim=2), (x - x_hat).view(5, 3, 4).norm(dim=2), atol=1e-3)
    # the same direction draws, only scaled per part
    assert torch.allclose(torch.nn.functional.normalize(whole.view(5, 3, 4), dim=2),
                          torch.nn.functional.normalize(per_part.view(5, 3, 4), dim=2), atol=1e-5)
    pvq = build_quantizer({"name": "pvq", "num_codebooks": 3, "bits_per_codebook": 2, "beam_width": 1}, 12)
    rvq = build_quantizer({"name": "rvq", "num_codebooks": 3, "bits_per_codebook": 2, "beam_width": 1}, 12)
    assert pvq.independent_parts == 3 and rvq.independent_parts == 1
