"""VQ/RVQ/PVQ encoders give exactly the codes of the plain formulas (ties included)."""

import pytest
import torch
from test_training_curves import reference_encode

from vqbench.quantizers import argmin, build_quantizer
from vqbench.quantizers.argmin import argmin_rows


def test_argmin_rows_is_torch_argmin(monkeypatch):
    monkeypatch.setattr(argmin, "MIN_ROW", 2)  # the compiled scan even on these small inputs
    monkeypatch.setattr(argmin, "MIN_SCORES", 1)
    nan, inf = float("nan"), float("inf")
    rows = torch.tensor([[1.0, nan, 0.0, nan], [1.0, 0.0, 0.0, 2.0], [inf, inf, inf, inf],
                         [1.0, -inf, 0.0, -inf], [nan, nan, nan, nan], [0.0, 1.0, 2.0, nan]])
    assert argmin_rows(rows).tolist() == rows.argmin(1).tolist() == [1, 1, 0, 1, 0, 3]
    ties = torch.randint(0, 4, (3000, 256), generator=torch.Generator().manual_seed(0)).float()
    assert torch.equal(argmin_rows(ties), ties.argmin(1))
    strided = torch.randn(64, 512)[:, ::2]  # non-contiguous input
    assert torch.equal(argmin_rows(strided), strided.argmin(1))
    assert torch.equal(argmin_rows(strided.double()), strided.double().argmin(1))


@pytest.mark.parametrize("name,M", [("vq", 1), ("rvq", 3), ("pvq", 4)])
@pytest.mark.parametrize("integer", [False, True])
def test_codes_equal_the_plain_formulas(name, M, integer):
    """Integer-valued data and codebooks make many exact ties: the first codeword must win.
    K = 128 and 5,000 vectors: large enough for the compiled argmin scan."""
    assert 128 >= argmin.MIN_ROW and 1234 * 128 >= argmin.MIN_SCORES
    g = torch.Generator().manual_seed(1)
    q = build_quantizer({"name": name, "num_codebooks": M, "bits_per_codebook": 7}, 16)
    x = torch.randn(5000, 16, generator=g) * 3
    q.codebooks.data = torch.randn(q.codebooks.shape, generator=g) * 2
    if integer:
        x, q.codebooks.data = x.round(), q.codebooks.data.round()
    codes = q.encode(x, chunk_size=1234)
    assert torch.equal(codes, reference_encode("pvq" if name == "pvq" else "rvq", q.codebooks.detach(), x))
    x_hat = q.decode(codes)
    chosen = q.codebooks.detach()[torch.arange(M), codes]
    assert torch.equal(x_hat.detach(), chosen.reshape(len(x), -1) if name == "pvq" else chosen.sum(1))


def test_sum_of_codewords_gradient():
    """Its hand-written backward equals autograd through advanced indexing (repeated codes too)."""
    from vqbench.quantizers.base import sum_of_codewords

    g = torch.Generator().manual_seed(3)
    books = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    codes = torch.randint(0, 5, (40, 3), generator=g)
    weights = torch.randn(40, 4, generator=g, dtype=torch.float64)
    (sum_of_codewords(books, codes) * weights).sum().backward()
    ours, books.grad = books.grad, None
    (books[torch.arange(3), codes].sum(1) * weights).sum().backward()
    torch.testing.assert_close(ours, books.grad)
    assert torch.autograd.gradcheck(lambda b: sum_of_codewords(b, codes), (books,))
