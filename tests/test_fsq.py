"""FSQ math (vqbench/quantizers/fsq.py): level table, bound, rounding, codes."""

from __future__ import annotations

import math

import pytest
import torch

from vqbench.quantizers.fsq import (
    FSQ_LEVELS,
    bound,
    codes_to_index,
    fsq_bits,
    fsq_decode,
    fsq_quantize,
    index_to_codes,
    levels_for_bits,
)


def test_level_table_hits_the_vqvae_bitrates_exactly():
    assert sorted(FSQ_LEVELS) == [12, 16, 20, 24, 28, 32, 36, 40]
    assert FSQ_LEVELS[12] == (8, 8, 8, 8)
    for bits, levels in FSQ_LEVELS.items():
        assert fsq_bits(levels) == bits
        assert min(levels) >= 5  # Mentzer et al.: at least 5 levels per channel
    with pytest.raises(ValueError, match="5 bits"):
        levels_for_bits(5)


@pytest.mark.parametrize("levels", [(5,), (8,), (7, 6), (16, 3, 2)])
def test_every_channel_takes_exactly_its_levels(levels):
    z = torch.linspace(-12, 12, 4001).unsqueeze(1).expand(-1, len(levels))
    q, codes = fsq_quantize(z, levels)
    for i, L in enumerate(levels):
        assert sorted(codes[:, i].unique().tolist()) == list(range(L))
        assert q[:, i].min().item() == -1.0 and q[:, i].max().item() <= 1.0
    assert torch.equal(fsq_decode(codes, levels), q)


def test_round_is_straight_through_and_bound_has_the_known_slope():
    # L = 5 (odd): bound = 2.002 tanh(z); at z = 0 its slope is 2.002, divided by L // 2 = 2.
    z = torch.zeros(1, 1, requires_grad=True)
    q, _ = fsq_quantize(z, (5,))
    q.sum().backward()
    assert z.grad.item() == pytest.approx(2.002 / 2, rel=1e-6)
    # L = 8 (even): shifted so that z = 0 lands on 0 after the -0.5 offset
    assert bound(torch.zeros(1, 1), (8,)).item() == pytest.approx(0.0, abs=1e-6)


def test_codes_index_round_trip():
    levels = (8, 5, 16)
    codes = torch.stack(torch.meshgrid(*(torch.arange(L) for L in levels), indexing="ij"), -1).reshape(-1, 3)
    index = codes_to_index(codes, levels)
    assert sorted(index.tolist()) == list(range(math.prod(levels)))
    assert torch.equal(index_to_codes(index, levels), codes)
