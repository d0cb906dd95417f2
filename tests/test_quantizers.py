"""Exact small cases for the four quantizers' hard encode/decode."""

import itertools

import pytest
import torch

from vqbench.quantizers import AVQ, PVQ, RVQ, VQ, build_quantizer


def exhaustive_best(quantizer, x):
    """Distance to the best of all K^M code tuples (brute force)."""
    M, K = quantizer.num_codebooks, quantizer.codebook_size
    tuples = torch.tensor(list(itertools.product(range(K), repeat=M)))
    recon = quantizer.decode(tuples).detach()
    return torch.cdist(x.double(), recon.double()).pow(2).min(dim=1).values


def test_vq_picks_nearest_codeword():
    q = VQ(dim=3, bits_per_codebook=2)
    q.codebooks.data = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    x = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.1, 0.1], [0.0, 0.2, 0.7]])
    assert q.encode(x)[:, 0].tolist() == [1, 0, 3]
    assert torch.equal(q.decode(q.encode(x)), q.codebooks.data[0][[1, 0, 3]])


def test_rvq_picks_nearest_codeword_of_each_residual():
    torch.manual_seed(1)
    q = RVQ(dim=6, num_codebooks=3, bits_per_codebook=3)
    q.codebooks.data = torch.randn(3, 8, 6)
    x = torch.randn(50, 6)
    codes = q.encode(x)
    residual = x.clone()
    for m in range(3):
        expected = torch.cdist(residual, q.codebooks.data[m]).argmin(1)
        assert torch.equal(codes[:, m], expected)
        residual = residual - q.codebooks.data[m][expected]
    assert torch.allclose(q.decode(codes), x - residual, atol=1e-6)


def test_pvq_equals_per_subspace_nearest_codeword():
    torch.manual_seed(2)
    q = PVQ(dim=8, num_codebooks=4, bits_per_codebook=2)
    q.codebooks.data = torch.randn(4, 4, 2)
    x = torch.randn(40, 8)
    codes = q.encode(x)
    for m in range(4):
        expected = torch.cdist(x[:, 2 * m : 2 * m + 2], q.codebooks.data[m]).argmin(1)
        assert torch.equal(codes[:, m], expected)
    assert torch.equal(q.decode(codes), torch.cat([q.codebooks.data[m][codes[:, m]] for m in range(4)], dim=1))


def test_pvq_is_exhaustive_search():
    torch.manual_seed(3)
    q = PVQ(dim=4, num_codebooks=2, bits_per_codebook=2)
    q.codebooks.data = torch.randn(2, 4, 2)
    x = torch.randn(30, 4)
    dist = (x - q.decode(q.encode(x))).pow(2).sum(1).double()
    assert torch.allclose(dist, exhaustive_best(q, x), atol=1e-5)


@pytest.mark.parametrize("M,bits", [(2, 2), (3, 2), (3, 1), (4, 1)])
def test_avq_with_wide_beam_equals_exhaustive_search(M, bits):
    torch.manual_seed(M * 10 + bits)
    K = 1 << bits
    q = AVQ(dim=5, num_codebooks=M, bits_per_codebook=bits, beam_width=K**M * M)
    q.codebooks.data = torch.randn(M, K, 5)
    x = torch.randn(100, 5)
    dist = (x - q.decode(q.encode(x))).pow(2).sum(1).double()
    assert torch.allclose(dist, exhaustive_best(q, x), atol=1e-4)


def reference_beam_search(codebooks, x, width):
    """A plain beam search written from the definition: a beam is a set of (codebook, codeword)
    with each codebook at most once; every step extends every beam by every codeword of its
    unused codebooks, merges equal sets, and keeps the `width` sets of least ||x - sum||^2."""
    M, K, _ = codebooks.shape
    out = []
    for v in x.double():
        beams = [frozenset()]
        for _ in range(M):
            children = {}
            for beam in beams:
                used = {m for m, _ in beam}
                for m in range(M):
                    if m in used:
                        continue
                    for k in range(K):
                        child = beam | {(m, k)}
                        if child not in children:
                            s = sum((codebooks[mm, kk].double() for mm, kk in child), torch.zeros_like(v))
                            children[child] = (v - s).pow(2).sum().item()
            beams = sorted(children, key=children.get)[:width]
        best = beams[0]
        out.append([dict(best)[m] for m in range(M)])
    return torch.tensor(out)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8])
def test_avq_equals_a_plain_beam_search_at_narrow_beams(width):
    """The production path (narrow beams, lookup tables, set hashes, set-minimum top-k) against
    the definition, codes and errors alike."""
    torch.manual_seed(40 + width)
    M, K, D = 4, 8, 6
    q = AVQ(dim=D, num_codebooks=M, bits_per_codebook=3, beam_width=width)
    q.codebooks.data = torch.randn(M, K, D)
    x = torch.randn(60, D)
    codes = q.encode(x)
    ref = reference_beam_search(q.codebooks.data, x, width)
    err = (x - q.decode(codes)).pow(2).sum(1)
    ref_err = (x - q.decode(ref)).pow(2).sum(1)
    assert torch.allclose(err, ref_err, atol=1e-4)
    assert (codes == ref).all(dim=1).float().mean() > 0.95  # equal codes up to float near-ties


def test_avq_uses_each_codebook_exactly_once():
    """x = 2a with a a codeword of codebook 0: using codebook 0 twice would be exact, but each
    codebook may give one codeword, so the best is a + (the codeword of codebook 1 nearest a)."""
    a = torch.tensor([1.0, 0.0, 0.0])
    book0 = torch.stack([a, torch.tensor([0.0, 5.0, 0.0])])
    book1 = torch.stack([torch.tensor([0.0, 0.0, 0.3]), torch.tensor([0.0, -4.0, 0.0])])
    for width in (1, 2, 4):
        q = AVQ(dim=3, num_codebooks=2, bits_per_codebook=1, beam_width=width)
        q.codebooks.data = torch.stack([book0, book1])
        codes = q.encode((2 * a).unsqueeze(0))
        assert codes.tolist() == [[0, 0]]
        err = (2 * a - q.decode(codes)[0]).pow(2).sum().item()
        assert err == pytest.approx(1.0 + 0.09)


def test_avq_beam_helps():
    torch.manual_seed(4)
    x = torch.randn(500, 16)
    cb = torch.randn(4, 16, 16) * 0.5
    errs = []
    for width in (1, 4, 16):
        q = AVQ(dim=16, num_codebooks=4, bits_per_codebook=4, beam_width=width)
        q.codebooks.data = cb.clone()
        errs.append((x - q.decode(q.encode(x))).pow(2).sum(1).mean().item())
    assert errs[0] >= errs[1] >= errs[2]
    assert errs[2] < errs[0]


def test_avq_reported_distance_matches_chunking():
    torch.manual_seed(5)
    q = AVQ(dim=8, num_codebooks=3, bits_per_codebook=3, beam_width=4)
    q.codebooks.data = torch.randn(3, 8, 8)
    x = torch.randn(101, 8)
    assert torch.equal(q.encode(x, chunk_size=7), q.encode(x, chunk_size=1000))


@pytest.mark.parametrize("name", ["vq", "pvq"])
def test_codes_round_trip_exactly(name):
    """Every codeword (tuple) is its own nearest neighbour: encode(decode(c)) == c."""
    q = build_quantizer({"name": name, "num_codebooks": 1 if name == "vq" else 2, "bits_per_codebook": 3,
                         "beam_width": 1}, 6)
    q.codebooks.data = torch.randn_like(q.codebooks)
    codes = torch.randint(0, 8, (20, q.num_codebooks))
    assert torch.equal(q.encode(q.decode(codes).detach()), codes)
    assert q.bits == q.num_codebooks * 3


@pytest.mark.parametrize("L,k", [(4096, 64), (4096, 300), (1000, 10), (96, 5)])
def test_smallest_equals_topk(L, k):
    """The set-minimum shortcut returns exactly topk's values (ties and +inf padding included)
    and indices that point at those values; it also covers the plain top-k fallback."""
    from vqbench.quantizers.avq import smallest

    g = torch.Generator().manual_seed(L + k)
    v = torch.randint(0, 50, (7, L), generator=g).float()  # many ties
    v[:, L // 2:] = float("inf")
    v[3] = float("inf")  # a padding row
    vals, idx = smallest(v, k)
    ref, _ = v.topk(k, dim=1, largest=False, sorted=True)
    assert torch.equal(vals, ref)
    assert torch.equal(v.gather(1, idx), vals)
    assert all(len(set(row.tolist())) == k for row in idx)  # k distinct columns per row


def test_avq_reencodes_its_reconstruction_with_zero_error():
    q = AVQ(dim=6, num_codebooks=3, bits_per_codebook=2, beam_width=64)
    q.codebooks.data = torch.randn_like(q.codebooks)
    x_hat, codes = q.quantize(torch.randn(20, 6))
    again = q.decode(q.encode(x_hat.detach()))
    assert torch.allclose(again, x_hat, atol=1e-5)
    assert q.bits == 6


def test_decode_is_differentiable_wrt_codebooks():
    q = RVQ(dim=4, num_codebooks=2, bits_per_codebook=2)
    codes = torch.tensor([[0, 1], [2, 1]])
    q.decode(codes).sum().backward()
    grad = q.codebooks.grad
    assert grad[0, 0].eq(1).all() and grad[0, 2].eq(1).all() and grad[1, 1].eq(2).all()
    assert grad[0, 1].eq(0).all() and grad[1, 0].eq(0).all()


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="not divisible"):
        PVQ(dim=10, num_codebooks=4, bits_per_codebook=2)
    with pytest.raises(ValueError, match="bits_per_codebook"):
        RVQ(dim=4, num_codebooks=2, bits_per_codebook=17)
    with pytest.raises(ValueError, match="beam_width"):
        AVQ(dim=4, num_codebooks=2, bits_per_codebook=2, beam_width=0)
    with pytest.raises(ValueError, match="data dimension 5 does not match"):
        RVQ(dim=4, num_codebooks=2, bits_per_codebook=2).encode(torch.randn(3, 5))
