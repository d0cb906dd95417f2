"""vqbench.paper.complexity: the paper's WMOPS convention against every published point."""

import math

import pytest

from vqbench.paper import figure
from vqbench.paper.complexity import paper_log10_wmops, paper_ops, paper_wmops, published_setting


@pytest.mark.parametrize("fig", ["fig4c", "fig6b"])
@pytest.mark.parametrize("quantizer", ["avq", "rvq", "pvq"])
def test_every_published_point_is_reproduced(fig, quantizer):
    f = figure(fig)
    for bits, published in zip(f.x, f.series[quantizer].mean):
        ours = paper_log10_wmops(quantizer, **published_setting(fig, quantizer, bits))
        assert abs(ours - published) < 1e-9, (fig, quantizer, bits, ours, published)  # brief: 0.05


def test_published_settings():
    assert published_setting("fig4c", "avq", 12) == {"num_codebooks": 4, "bits_per_codebook": 3, "dim": 64,
                                                     "beam_width": 16}
    assert published_setting("fig6b", "avq", 12)["beam_width"] == 8  # min(64, K = 8)
    assert published_setting("fig6b", "avq", 24)["beam_width"] == 64
    assert published_setting("fig6b", "rvq", 40) == {"num_codebooks": 4, "bits_per_codebook": 10, "dim": 128,
                                                     "beam_width": None}
    with pytest.raises(ValueError, match="not a multiple"):
        published_setting("fig4c", "rvq", 14)
    with pytest.raises(ValueError, match="known: fig4c, fig6b"):
        published_setting("fig5", "rvq", 12)


def test_rvq_hand_count():
    # M = 2, K = 4, D = 3: one searched stage (the calculator skips one): 4 distances x (5 adds + 3 muls) = 32,
    # argmin over 4 = 3 adds + 3 moves, move the codeword = 3, output sum = 3 adds -> 44
    assert paper_ops("rvq", 2, 2, 3) == 44
    assert paper_wmops("rvq", 2, 2, 3) == 44e-6


def test_pvq_hand_count():
    # M = 2, K = 2, D = 4 (2 dims per subspace): split + concatenate = 8 moves; one searched subspace:
    # 2 distances x (3 adds + 2 muls) = 10, argmin over 2 = 2, move the sub-codeword = 2 -> 22
    assert paper_ops("pvq", 2, 1, 4) == 22


def test_avq_hand_count_two_codebooks():
    # M = 2, K = 2, D = 1, W = 1. Root: 4 distances x 2 = 8, best 1 of 4 = 3 adds + 3 moves, store 1 -> 15.
    # Step 1: rebuild the beam 2, branches 4 x (C(2,1) - 1) = 4, 2 distances x 2 + best 1 of 2 (2) = 6,
    # store 1 tuple + codeword = 2, reconstruction 1, its MSE 1 add + 2 muls = 3, argmin of 1 = 0 -> 18.
    assert paper_ops("avq", 2, 1, 1, beam_width=1) == 33


def test_avq_hand_count_three_codebooks():
    # M = 3, K = 2, D = 1, W = 2. Root: 6 x 2 = 12, best 2 of 6 = 2 x (5 + 4) = 18, store 2 -> 32.
    # Step 1: 4 + branches 8 + 2 beams x (4 x 2 + best 2 of 4 = 10) = 36 + 8 + 4 + 12 + best 2 of 4 (10) + 2 = 84.
    # Step 2: 8 + 8 + 2 x (2 x 2 + best 2 of 2 = 2) = 12 + 8 + 8 + 12 + argmin of 4 (6) = 62.
    assert paper_ops("avq", 3, 1, 1, beam_width=2) == 32 + 84 + 62


def test_bad_inputs():
    with pytest.raises(ValueError, match="covers avq, rvq, pvq, got 'vq'"):
        paper_wmops("vq", 1, 8, 64)
    with pytest.raises(ValueError, match="avq needs beam_width"):
        paper_wmops("avq", 4, 8, 64)
    with pytest.raises(ValueError, match="num_codebooks=0"):
        paper_wmops("rvq", 0, 8, 64)
    assert paper_wmops("rvq", 1, 8, 64) == 0.0  # the calculator counts no stage for a single codebook
    with pytest.raises(ValueError, match="log10 is undefined"):
        paper_log10_wmops("rvq", 1, 8, 64)


def test_growth_with_beam_and_bits():
    # more beam, more work; each extra bit per codebook roughly doubles the searches
    assert paper_wmops("avq", 4, 8, 128, 64) > paper_wmops("avq", 4, 8, 128, 16)
    ratio = paper_wmops("rvq", 4, 9, 128) / paper_wmops("rvq", 4, 8, 128)
    assert 1.9 < ratio < 2.0
    assert math.isclose(paper_log10_wmops("pvq", 4, 8, 128), math.log10(paper_wmops("pvq", 4, 8, 128)))
