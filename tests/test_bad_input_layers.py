"""Bad input to the library layers (vqbench.VQ / RVQ / PVQ / AVQ / FSQ): a ValueError that names
the argument, the dtype or the first bad row or code, never a silently finite answer.

tests/test_layers.py: what the layers compute. This file: what they refuse, and the odd but
valid inputs (float64, float16, an empty batch, torch.compile) they take.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import vqbench
from vqbench.nn import ESTIMATORS


def _layer(estimator, **kwargs):
    """An 8-dim layer of 16-codeword codebooks for `estimator`: RVQ, or PVQ for SF-DiVeQ (which
    runs only on codebooks over separate dimensions)."""
    if estimator == "sf_diveq":
        return vqbench.PVQ(8, num_codebooks=4, codebook_size=16, estimator=estimator, **kwargs)
    return vqbench.RVQ(8, codebook_size=16, estimator=estimator, **kwargs)

LAYERS = [
    (vqbench.VQ, dict(codebook_size=16), 1),
    (vqbench.RVQ, dict(num_codebooks=3, codebook_size=16), 3),
    (vqbench.PVQ, dict(num_codebooks=4, codebook_size=16), 4),
    (vqbench.AVQ, dict(num_codebooks=3, codebook_size=16, beam_width=4), 3),
]
NAMES = ["VQ", "RVQ", "PVQ", "AVQ"]


def _data(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _with(x: torch.Tensor, index: tuple[int, ...], value: float) -> torch.Tensor:
    x = x.clone()
    x[index] = value
    return x


# ------------------------------------------------------------------ NaN / Inf input
@pytest.mark.parametrize("cls,kwargs,M", LAYERS, ids=NAMES)
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_input_is_refused_in_train_and_eval(cls, kwargs, M, mode, bad):
    layer = cls(8, **kwargs).train(mode == "train")
    x = _with(_data(2, 3, 8), (1, 2, 5), bad)
    with pytest.raises(ValueError, match=rf"vqbench\.{cls.__name__}: input row \[1, 2\] holds NaN or Inf \(1 of 6 rows\)"):
        layer(x)
    with pytest.raises(ValueError, match=r"row \[1, 2\] holds NaN or Inf"):
        layer.encode(x)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_non_finite_input_is_refused_by_every_estimator(estimator):
    layer = _layer(estimator)
    before = layer.codebooks.detach().clone()
    with pytest.raises(ValueError, match=r"input row \[0\] holds NaN or Inf"):
        layer(_with(_data(4, 8), (0, 0), float("nan")))
    assert torch.equal(layer.codebooks.detach(), before)  # no EMA step or replacement took the NaN


def test_fsq_refuses_nan_instead_of_an_int64_minimum_code():
    fsq = vqbench.FSQ(4, levels=[5, 5, 5, 5])
    x = _with(torch.zeros(3, 4), (2, 0), float("nan"))
    with pytest.raises(ValueError, match=r"vqbench\.FSQ: input row \[2\] holds NaN or Inf"):
        fsq(x)
    with pytest.raises(ValueError, match=r"row \[2\] holds NaN or Inf"):
        fsq.encode(x)


# ------------------------------------------------------------------ decode: codes in range
@pytest.mark.parametrize("cls,kwargs,M", LAYERS, ids=NAMES)
@pytest.mark.parametrize("code", [16, -1, 1 << 40])
def test_decode_refuses_a_code_outside_the_codebook(cls, kwargs, M, code):
    layer = cls(8, **kwargs)
    codes = torch.zeros(2, M, dtype=torch.long)
    codes[1, M - 1] = code
    with pytest.raises(ValueError, match=rf"code {code} at \[1, {M - 1}\] is out of range: codebook {M - 1} has codes 0..15"):
        layer.decode(codes)
    assert layer.decode(torch.full((2, M), 15)).shape == (2, 8)  # the largest valid code decodes


def test_decode_refuses_float_codes():
    with pytest.raises(ValueError, match="codes must be an integer tensor, got torch.float32"):
        vqbench.RVQ(8, codebook_size=16).decode(torch.zeros(2, 4))


def test_fsq_decode_refuses_a_level_index_outside_its_channel():
    fsq = vqbench.FSQ(4, levels=[8, 5, 5, 5])
    assert fsq.decode(torch.tensor([[7, 4, 4, 4]])).shape == (1, 4)
    with pytest.raises(ValueError, match=r"code 5 at \[0, 1\] is out of range: codebook 1 has codes 0..4"):
        fsq.decode(torch.tensor([[7, 5, 0, 0]]))


# ------------------------------------------------------------------ init_from_data
@pytest.mark.parametrize("cls,kwargs,M", LAYERS, ids=NAMES)
def test_init_from_data_refuses_a_nan_row_and_leaves_the_codebooks(cls, kwargs, M):
    layer = cls(8, **kwargs)
    before = layer.codebooks.detach().clone()
    x = _with(_data(50, 8), (7, 3), float("nan"))
    with pytest.raises(ValueError, match=r"init_from_data's x row \[7\] holds NaN or Inf \(1 of 50 rows\)"):
        layer.init_from_data(x)
    assert torch.equal(layer.codebooks.detach(), before)
    with pytest.raises(ValueError, match="init_from_data needs at least one vector"):
        layer.init_from_data(torch.zeros(0, 8))


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16], ids=["float64", "float16"])
def test_every_estimator_takes_float64_and_float16(estimator, dtype):
    layer = _layer(estimator)
    x = _data(6, 8, dtype=dtype).requires_grad_()
    out = layer(x)
    assert torch.isfinite(out.x_hat).all() and out.x_hat.shape == x.shape
    (out.x_hat.float().pow(2).mean() + out.aux_loss).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dim", [4, 8], ids=["no-projection", "projection"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=["float16", "float64"])
def test_fsq_takes_float16_and_float64_like_the_other_layers(dim, dtype):
    fsq = vqbench.FSQ(dim, levels=[5, 5, 5, 5])
    out = fsq(_data(3, dim, dtype=dtype))
    assert out.codes.shape == (3, 4) and torch.isfinite(out.x_hat).all()


@pytest.mark.parametrize("layer", [vqbench.RVQ(8, codebook_size=16), vqbench.FSQ(8, levels=[5, 5])],
                         ids=["RVQ", "FSQ"])
@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool])
def test_integer_input_is_refused_naming_its_dtype(layer, dtype):
    with pytest.raises(ValueError, match=f"input must be a floating-point tensor, got {dtype}"):
        layer(torch.ones(2, 8, dtype=dtype))


# ------------------------------------------------------------------ an empty batch
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_an_empty_batch_gives_empty_outputs_and_a_zero_aux_loss(estimator):
    layer = _layer(estimator, replacement=True)
    before = layer.codebooks.detach().clone()
    x = torch.zeros(0, 8, requires_grad=True)
    out = layer(x)
    assert out.x_hat.shape == (0, 8) and out.codes.shape == (0, 4)
    assert out.aux_loss.item() == 0.0
    (out.x_hat.sum() + out.aux_loss).backward()
    assert torch.equal(layer.codebooks.detach(), before)


# ------------------------------------------------------------------ constructor arguments
@pytest.mark.parametrize("build, message", [
    (lambda: vqbench.RVQ(8, codebook_size=1), "vqbench.RVQ: codebook_size must be an integer in 2..65536, got 1"),
    (lambda: vqbench.RVQ(8, codebook_size=1 << 17), "codebook_size must be an integer in 2..65536, got 131072"),
    (lambda: vqbench.RVQ(8, codebook_size=16.0), "vqbench.RVQ: codebook_size must be an integer in 2..65536, got 16.0"),
    (lambda: vqbench.VQ(8, codebook_size="16"), "vqbench.VQ: codebook_size must be an integer in 2..65536, got '16'"),
    (lambda: vqbench.RVQ(8, num_codebooks=0, codebook_size=16), "vqbench.RVQ: num_codebooks must be an integer >= 1, got 0"),
    (lambda: vqbench.RVQ(8, num_codebooks=2.0, codebook_size=16), "num_codebooks must be an integer >= 1, got 2.0"),
    (lambda: vqbench.PVQ(0, codebook_size=16), "vqbench.PVQ: dim must be an integer >= 1, got 0"),
    (lambda: vqbench.PVQ(8.0, codebook_size=16), "vqbench.PVQ: dim must be an integer >= 1, got 8.0"),
    (lambda: vqbench.PVQ(10, num_codebooks=3, codebook_size=16), "vqbench.PVQ: dim 10 is not divisible by num_codebooks=3"),
    (lambda: vqbench.AVQ(8, codebook_size=16, beam_width=0), "vqbench.AVQ: beam_width must be an integer >= 1, got 0"),
    (lambda: vqbench.RVQ(8, codebook_size=16, ema_decay=1.0), "vqbench.RVQ: ema_decay must be a finite number in [0, 1), got 1.0"),
    (lambda: vqbench.RVQ(8, codebook_size=16, replacement_every=0), "vqbench.RVQ: replacement_every must be >= 1, got 0"),
    (lambda: vqbench.RVQ(8, codebook_size=16, discard_threshold=2), "discard_threshold must be a finite number in [0, 1], got 2"),
    (lambda: vqbench.RVQ(8, codebook_size=16, beta=float("nan")), "vqbench.RVQ: beta must be a finite number >= 0, got nan"),
    (lambda: vqbench.FSQ(8.5), "vqbench.FSQ: dim must be an integer, got 8.5"),
])
def test_bad_arguments_name_the_layer_argument_not_a_cli_key(build, message):
    with pytest.raises(ValueError) as err:
        build()
    assert str(err.value) == message or message in str(err.value)
    assert "quantizer." not in str(err.value) and "optimizer." not in str(err.value)


# ------------------------------------------------------------------ torch.compile, docs
def test_torch_compile_runs_avq_with_its_numba_search_outside_the_graph():
    # A fresh process: dynamo failed only where numba's dispatcher had not yet run in the process
    # (the first call, as a user's). backend="eager": dynamo's tracing, no C++ compiler needed.
    code = ("import torch, vqbench\n"
            "layer = vqbench.AVQ(8, num_codebooks=2, codebook_size=16, beam_width=4).eval()\n"
            "x = torch.randn(5, 8)\n"
            "codes = torch.compile(layer, backend='eager')(x).codes\n"
            "assert torch.equal(codes, layer(x).codes)\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr[-2000:]


@pytest.mark.parametrize("cls", [vqbench.VQ, vqbench.RVQ, vqbench.PVQ, vqbench.AVQ])
def test_layer_docstrings_recommend_replacement_or_data_initialisation(cls):
    doc = " ".join((cls.__doc__ or "").split())
    # the defaults need no advice: replacement is on, and the docstring says why
    assert "replacement in training (on by default: a randomly started layer otherwise uses few codewords)" in doc
