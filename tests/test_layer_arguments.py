"""The library layers' arguments, exactly: defaults equal to the CLI's (one convention for both front
ends), every argument reaching the estimator or replacer it belongs to, and the boundaries of every
argument and input check (issue 23: the mutation pass found these unchecked)."""

import inspect
import math

import pytest
import torch

import vqbench
from vqbench.nn.checks import check_codes, check_integer, check_number
from vqbench.nn.layer import QuantizerLayer
from vqbench.training.diveq import DEFAULT_NOISE_STD
from vqbench.training.registry import estimator_class
from vqbench.training.replacement import ReplacementConfig


def test_layer_defaults_are_the_cli_defaults():
    sig = inspect.signature(QuantizerLayer.__init__).parameters
    replacement = ReplacementConfig()
    assert sig["replacement"].default is replacement.enabled is True
    assert sig["replacement_every"].default == replacement.num_batches
    assert sig["discard_threshold"].default == replacement.discard_threshold
    assert sig["beta"].default == estimator_class("ste").defaults()["beta"] == estimator_class("ema").defaults()["beta"]
    assert sig["ema_decay"].default == estimator_class("ema").defaults()["ema_decay"]
    assert sig["temperature"].default == estimator_class("gumbel").defaults()["temperature"]
    assert sig["noise_std"].default == DEFAULT_NOISE_STD == estimator_class("diveq").defaults()["noise_std"]
    assert sig["rotation_form"].default == estimator_class("rotation").defaults()["rotation_form"]


def test_layer_sizes_by_default():
    """256 codewords (8 bits) per codebook, 4 codebooks, beam 16: the README's layer defaults."""
    assert (vqbench.VQ(8).num_codebooks, vqbench.VQ(8).codebook_size) == (1, 256)
    for cls in (vqbench.RVQ, vqbench.PVQ, vqbench.AVQ):
        layer = cls(8)
        assert (layer.num_codebooks, layer.codebook_size, layer.bits) == (4, 256, 32)
    assert vqbench.AVQ(8).quantizer.beam_width == 16
    assert vqbench.AVQ(8, beam_width=3).quantizer.beam_width == 3


def test_every_argument_reaches_its_estimator_and_replacer():
    layer = vqbench.RVQ(8, 2, 16, replacement_every=7, discard_threshold=0.2)
    assert (layer.replacer.num_batches, layer.replacer.discard_threshold) == (7, 0.2)
    assert layer.replacer.noise == ReplacementConfig().noise
    assert vqbench.RVQ(8, 2, 16).replacer.num_batches == 100
    assert vqbench.RVQ(8, 2, 16, replacement=False).replacer is None
    assert vqbench.VQ(8, 16, estimator="ste", beta=0.5).estimator.beta == 0.5
    assert vqbench.VQ(8, 16, estimator="gumbel", temperature=0.3).estimator.temperature == 0.3
    assert vqbench.VQ(8, 16, estimator="diveq", sigma2=0.04).estimator.noise_std == pytest.approx(0.2)
    assert vqbench.VQ(8, 16, estimator="ema", ema_decay=0.5).estimator.decay == 0.5
    # sigma2 = 0 is allowed (no noise); a negative variance is not
    assert vqbench.VQ(8, 16, estimator="diveq", sigma2=0.0).estimator.noise_std == 0.0
    with pytest.raises(ValueError, match=r"sigma2 must be >= 0, got -0.1"):
        vqbench.VQ(8, 16, estimator="diveq", sigma2=-0.1)


def test_only_gradient_trained_codebooks_require_grad():
    assert vqbench.VQ(8, 16).codebooks.requires_grad
    assert not vqbench.VQ(8, 16, estimator="ema").codebooks.requires_grad


@pytest.mark.parametrize("cls", [vqbench.VQ, vqbench.RVQ, vqbench.PVQ, vqbench.AVQ])
def test_codebook_size_bounds(cls):
    assert cls(8, codebook_size=2).codebook_size == 2
    assert cls(8, codebook_size=65536 if cls is vqbench.VQ else 3).codebook_size in (65536, 3)
    for bad in (1, 65537, 2.0, True):
        with pytest.raises(ValueError, match=rf"vqbench\.{cls.__name__}: codebook_size must be an integer in "
                                             rf"2\.\.65536, got {bad!r}"):
            cls(8, codebook_size=bad)


def test_size_arguments_must_be_positive_integers():
    assert vqbench.RVQ(8, num_codebooks=1, codebook_size=4).num_codebooks == 1
    assert vqbench.AVQ(8, 2, 4, beam_width=1).quantizer.beam_width == 1
    for key, value in (("num_codebooks", 0), ("num_codebooks", 2.0), ("beam_width", 0), ("beam_width", True)):
        with pytest.raises(ValueError, match=rf"^vqbench\.AVQ: {key} must be an integer >= 1, got {value!r}$"):
            vqbench.AVQ(8, codebook_size=4, **{key: value})
    with pytest.raises(ValueError, match=r"^vqbench\.VQ: dim must be an integer >= 1, got 0$"):
        vqbench.VQ(0, codebook_size=4)


def test_check_integer_and_check_number_boundaries():
    assert check_integer("L", "n", 3, 3) == 3
    for bad, message in ((2, "n must be >= 3, got 2"), (3.0, "n must be an integer, got 3.0"),
                         (True, "n must be an integer, got True"), (None, "n must be an integer, got None")):
        with pytest.raises(ValueError, match=rf"^vqbench\.L: {message}$"):
            check_integer("L", "n", bad, 3)
    assert check_number("L", "p", 0.0, 0.0, 1.0) == 0.0
    assert check_number("L", "p", 1.0, 0.0, 1.0) == 1.0           # a closed upper end includes it
    assert check_number("L", "p", "0.5", 0.0) == 0.5
    with pytest.raises(ValueError, match=r"^vqbench\.L: p must be a finite number in \[0, 1\), got 1\.0$"):
        check_number("L", "p", 1.0, 0.0, 1.0, high_open=True)
    assert check_number("L", "p", 0.999, 0.0, 1.0, high_open=True) == 0.999
    for bad in (-0.1, 1.5, math.nan, math.inf, True, "x", None):
        with pytest.raises(ValueError, match=r"^vqbench\.L: p must be a finite number in \[0, 1\], got "):
            check_number("L", "p", bad, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"^vqbench\.L: p must be a finite number >= 0\.5, got 0\.25$"):
        check_number("L", "p", 0.25, 0.5)


def test_layer_number_arguments_boundaries():
    vqbench.VQ(8, 16, discard_threshold=0.0)
    vqbench.VQ(8, 16, discard_threshold=1.0)
    vqbench.VQ(8, 16, beta=0.0)
    vqbench.VQ(8, 16, estimator="ema", ema_decay=0.0)
    with pytest.raises(ValueError, match=r"ema_decay must be a finite number in \[0, 1\), got 1\.0"):
        vqbench.VQ(8, 16, estimator="ema", ema_decay=1.0)
    with pytest.raises(ValueError, match=r"^vqbench\.VQ: temperature must be > 0, got 0\.0$"):
        vqbench.VQ(8, 16, estimator="gumbel", temperature=0.0)
    with pytest.raises(ValueError, match=r"replacement_every must be >= 1, got 0"):
        vqbench.VQ(8, 16, replacement_every=0)
    with pytest.raises(ValueError, match=r"give noise_std or sigma2"):
        vqbench.VQ(8, 16, estimator="diveq", noise_std=0.1, sigma2=0.01)


def test_inputs_and_codes_need_their_last_axis():
    layer = vqbench.RVQ(4, 2, 4).eval()
    with pytest.raises(ValueError, match=r"the input's last axis must have size dim=4, got shape \(\)"):
        layer(torch.tensor(1.0))
    one = layer(torch.ones(4))                     # a single vector, 1-D
    assert one.x_hat.shape == (4,) and one.codes.shape == (2,)
    assert layer.decode(torch.zeros(2, dtype=torch.long)).shape == (4,)
    with pytest.raises(ValueError, match=r"codes' last axis must have size num_codebooks=2, got shape \(\)"):
        layer.decode(torch.tensor(0))
    fsq = vqbench.FSQ(3, levels=[3, 3, 3])
    assert fsq(torch.zeros(3)).x_hat.shape == (3,)
    assert fsq.decode(torch.zeros(3, dtype=torch.long)).shape == (3,)
    with pytest.raises(ValueError, match=r"last axis must have size dim=3, got shape \(\)"):
        fsq(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"codes' last axis must have size 3, got shape \(\)"):
        fsq.decode(torch.tensor(0))


def test_check_codes_boundaries():
    sizes = torch.tensor([4, 2])
    check_codes("L", torch.tensor([[3, 1], [0, 0]]), sizes)
    with pytest.raises(ValueError, match=r"^vqbench\.L: code 2 at \[1, 1\] is out of range: codebook 1 has codes 0\.\.1$"):
        check_codes("L", torch.tensor([[3, 1], [0, 2]]), sizes)
    with pytest.raises(ValueError, match=r"code -1 at \[0, 0\]"):
        check_codes("L", torch.tensor([[-1, 0]]), sizes)
    for bad in (torch.tensor([[0.0, 1.0]]), torch.tensor([[True, False]]), [[0, 1]]):
        with pytest.raises(ValueError, match=r"codes must be an integer tensor"):
            check_codes("L", bad, sizes)


def test_fsq_bits_choose_the_levels():
    assert vqbench.FSQ(3, levels=[8, 5, 5]).num_channels == 3
    with pytest.raises(ValueError, match="levels or bits, not both"):
        vqbench.FSQ(3, levels=[8, 5, 5], bits=8)
    twelve = vqbench.FSQ(4, bits=12)
    assert twelve.num_channels == len(twelve.levels) and math.prod(twelve.levels) <= 2**12
    assert vqbench.FSQ(4).levels == twelve.levels                        # 12 bits by default
    from vqbench.quantizers.fsq import FSQ_LEVELS, levels_for_bits

    assert list(twelve.levels) == list(FSQ_LEVELS[12])
    assert list(vqbench.FSQ(4, bits=16).levels) == list(FSQ_LEVELS[16]) != list(twelve.levels)
    assert list(vqbench.FSQ(4, bits=20).levels) == list(levels_for_bits(20))   # beyond the table


def test_the_first_training_batch_initialises_the_codebooks_by_the_init_argument():
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1)) * 3 + 5
    for init in ("data", "random"):
        layer = vqbench.VQ(4, 8, init=init)
        assert not bool(layer.initialized)
        layer.eval()(x)                                    # evaluation never initialises
        assert not bool(layer.initialized)
        layer.train()(x)
        assert bool(layer.initialized)
        rows_of_x = (torch.cdist(layer.codebooks.detach()[0], x).min(1).values < 1e-5).all().item()
        # "data": codewords are training vectors; "random": N(0, (0.01 s)^2), nowhere near x (mean 5)
        assert rows_of_x is (init == "data")
        if init == "random":
            assert layer.codebooks.detach().abs().max() < 1.0


def test_kmeans_init_needs_codebook_size_vectors_and_no_fewer():
    layer = vqbench.VQ(2, 4, init="kmeans")
    layer.init_from_data(torch.randn(4, 2), how="kmeans")      # exactly K vectors: fine
    assert bool(layer.initialized)
    with pytest.raises(ValueError, match=r"init='kmeans' needs at least codebook_size=4 vectors, got 3"):
        layer.init_from_data(torch.randn(3, 2), how="kmeans")


def test_no_grad_in_training_mode_builds_no_graph():
    layer = vqbench.RVQ(4, 2, 8).train()
    x = torch.randn(16, 4, requires_grad=True)
    with torch.no_grad():
        out = layer(x)
    assert not out.x_hat.requires_grad
    assert layer(x).x_hat.requires_grad


def test_a_replacement_restarts_the_ema_averages_of_the_codewords_it_replaced():
    torch.manual_seed(0)
    layer = vqbench.VQ(2, 4, estimator="ema", replacement_every=1, discard_threshold=0.5, init="data").train()
    layer(torch.randn(32, 2))
    layer(torch.ones(16, 2))        # runs the first batch's hooks: all four codewords were used
    layer.after_step()              # this batch used one codeword: three dead ones replaced
    counts, sums = layer.estimator.counts[0], layer.estimator.sums[0]
    restarted = counts == 1.0
    assert int(restarted.sum()) == 3
    assert torch.equal(sums[restarted], layer.codebooks.detach()[0][restarted])


def test_each_layer_documents_itself_and_the_common_arguments():
    for cls, first in ((vqbench.VQ, "Vector quantization"), (vqbench.RVQ, "Residual VQ"), (vqbench.PVQ, "Product VQ"),
                       (vqbench.AVQ, "Additive VQ")):
        assert cls.__doc__.startswith(first)
        assert "Keyword arguments shared by every layer" in cls.__doc__


@pytest.mark.parametrize("cls", [vqbench.VQ, vqbench.RVQ, vqbench.PVQ, vqbench.AVQ])
def test_dim_is_checked_by_every_layer_with_the_layers_own_words(cls):
    with pytest.raises(ValueError, match=rf"^vqbench\.{cls.__name__}: dim must be an integer >= 1, got 0$"):
        cls(0, codebook_size=4)
    if cls is not vqbench.VQ:
        with pytest.raises(ValueError, match=rf"^vqbench\.{cls.__name__}: num_codebooks must be an integer >= 1, "
                                             r"got 0$"):
            cls(8, num_codebooks=0, codebook_size=4)


def test_replacement_property_and_a_one_channel_fsq():
    assert vqbench.VQ(4, 8).replacement is True
    assert vqbench.VQ(4, 8, replacement=False).replacement is False
    assert vqbench.VQ(4, 8, replacement=False).codewords_replaced == 0
    fsq = vqbench.FSQ(1, levels=[5])
    assert fsq(torch.tensor([[0.3]])).x_hat.shape == (1, 1)
    with pytest.raises(ValueError, match=r"^vqbench\.FSQ: dim must be >= 1, got 0$"):
        vqbench.FSQ(0, levels=[5])


def test_each_layer_docstring_keeps_its_own_summary_and_the_shared_arguments():
    for layer, summary in ((vqbench.VQ, "Vector quantization: one codebook"), (vqbench.RVQ, "Residual VQ:"),
                           (vqbench.PVQ, "Product VQ:"), (vqbench.AVQ, "Additive VQ:")):
        assert layer.__doc__.startswith(summary), layer.__name__
        assert "Keyword arguments shared by every layer" in layer.__doc__, layer.__name__


def test_fsq_bits_are_checked_before_the_level_table():
    with pytest.raises(ValueError, match=r"^vqbench\.FSQ: bits must be >= 1, got 0$"):
        vqbench.FSQ(2, bits=0)
    with pytest.raises(ValueError, match=r"no level table for 1 bits"):     # 1 bit passes the check
        vqbench.FSQ(2, bits=1)


def test_kmeans_init_is_the_quantizers_classical_fit_with_10_lloyd_iterations_and_one_alternation(capsys):
    """init='kmeans' = quantizer.fit_kmeans(x, 10, 1, seed, progress=False) exactly (AVQ: both the
    Lloyd iterations and the alternations change its codebooks)."""
    import copy

    x = torch.randn(2600, 8, generator=torch.Generator().manual_seed(0))
    layer = vqbench.AVQ(8, num_codebooks=2, codebook_size=64, init="kmeans")
    reference = copy.deepcopy(layer.quantizer)
    reference.fit_kmeans(x.numpy(), 10, 1, 3, False)
    capsys.readouterr()
    layer.init_from_data(x, seed=3, how="kmeans")
    assert capsys.readouterr().err == ""                               # no progress bar from a layer
    assert torch.equal(layer.codebooks.detach(), reference.codebooks.detach())
