"""The library layers (vqbench.VQ / RVQ / PVQ / AVQ / FSQ): shapes, train/eval, estimators,
dead-code replacement, devices and the public API."""

from __future__ import annotations

import pydoc
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vqbench
from vqbench.nn import ESTIMATORS, Quantized

LAYERS = [
    (vqbench.VQ, dict(codebook_size=16), 1),
    (vqbench.RVQ, dict(num_codebooks=3, codebook_size=16), 3),
    (vqbench.PVQ, dict(num_codebooks=4, codebook_size=16), 4),
    (vqbench.AVQ, dict(num_codebooks=3, codebook_size=16, beam_width=4), 3),
]


def _data(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls,kwargs,M", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_shapes_and_gradients_on_image_grids(cls, kwargs, M, estimator):
    if estimator == "sf_diveq" and cls is vqbench.AVQ:
        with pytest.raises(ValueError, match="sf_diveq runs on VQ and PVQ"):
            cls(8, estimator=estimator, **kwargs)
        return
    layer = cls(8, estimator=estimator, **kwargs)
    x = _data(2, 3, 5, 8).requires_grad_()  # [B, H, W, D]
    layer.init_from_data(x.detach())
    out = layer(x)
    assert isinstance(out, Quantized)
    assert out.x_hat.shape == x.shape and out.codes.shape == (2, 3, 5, M) and out.codes.dtype == torch.long
    assert out.aux_loss.dim() == 0
    (out.x_hat.pow(2).mean() + out.aux_loss).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    books = layer.codebooks.grad
    if estimator == "ema":
        assert books is None  # moved by moving averages only
    else:
        assert books is not None and books.abs().sum() > 0
    assert (out.aux_loss.item() == 0.0) == (estimator in ("nsvq", "diveq", "sf_diveq", "gumbel"))


@pytest.mark.parametrize("cls,kwargs,M", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_eval_is_the_hard_quantization_and_encode_decode_agree(cls, kwargs, M):
    layer = cls(8, estimator="nsvq", **kwargs)
    x = _data(4, 7, 8, seed=1)
    layer.init_from_data(x)
    layer.eval()
    first, second = layer(x), layer(x)
    codes = layer.encode(x)
    assert codes.shape == (4, 7, M)
    assert torch.equal(first.x_hat, second.x_hat) and torch.equal(first.codes, codes)
    assert torch.equal(first.x_hat, layer.decode(codes))
    assert first.aux_loss.item() == 0.0
    flat = layer.quantizer.decode(layer.quantizer.encode(x.reshape(-1, 8))).view(x.shape)
    assert torch.equal(first.x_hat, flat)
    layer.train()
    noisy = layer(x)  # NSVQ: the error keeps its norm, not its direction
    assert not torch.allclose(noisy.x_hat, first.x_hat)
    assert torch.allclose((noisy.x_hat - x).norm(dim=-1), (first.x_hat - x).norm(dim=-1), atol=1e-5)


def test_ste_and_ema_layers_pass_identity_gradient_and_rotation_layer_does_not():
    x = _data(10, 4, seed=2).requires_grad_()
    for estimator, identity in (("ste", True), ("ema", True), ("rotation", False)):
        layer = vqbench.RVQ(4, num_codebooks=2, codebook_size=4, estimator=estimator)
        layer.init_from_data(x.detach())
        (grad,) = torch.autograd.grad((layer(x).x_hat * x.detach()).sum(), x)
        assert torch.allclose(grad, x.detach()) == identity
        assert grad.abs().sum() > 0


def test_replacement_revives_a_dead_codeword():
    x = _data(256, 4, seed=3)
    layer = vqbench.VQ(4, codebook_size=4, estimator="nsvq", replacement=True, replacement_every=5)
    layer.init_from_data(x)
    with torch.no_grad():
        layer.codebooks[0, 2] = 1000.0  # far from every vector: never chosen
    for _ in range(5):
        out = layer(x)
        assert (out.codes != 2).all()
    layer(x)  # the window closed: replaced before this batch was encoded
    assert layer.codewords_replaced >= 1
    assert layer.codebooks[0, 2].abs().max() < 100
    assert (layer(x).codes == 2).any()


def test_replacement_off_leaves_the_dead_codeword():
    x = _data(64, 4, seed=3)
    layer = vqbench.VQ(4, codebook_size=4, replacement=False, replacement_every=1)
    layer.init_from_data(x)
    with torch.no_grad():
        layer.codebooks[0, 2] = 1000.0
    for _ in range(3):
        layer(x)
    assert layer.codewords_replaced == 0 and layer.codebooks[0, 2, 0].item() == 1000.0


def test_ema_layer_training_lowers_the_error():
    x = _data(512, 6, seed=4)
    layer = vqbench.RVQ(6, num_codebooks=2, codebook_size=8, estimator="ema", ema_decay=0.5)
    layer.init_from_data(x)
    layer.eval()
    before = (layer(x).x_hat - x).pow(2).mean().item()
    layer.train()
    for _ in range(20):
        layer(x)
    layer.eval()
    assert (layer(x).x_hat - x).pow(2).mean().item() < 0.9 * before


def test_bad_arguments_raise_one_clear_error():
    with pytest.raises(ValueError, match="estimator must be one of"):
        vqbench.RVQ(8, estimator="adam")
    with pytest.raises(ValueError, match="codebook_size must be an integer in 2..65536"):
        vqbench.RVQ(8, codebook_size=1)
    with pytest.raises(ValueError, match=r"vqbench.RVQ: beta must be a finite number >= 0"):
        vqbench.RVQ(8, estimator="ste", beta=-1)
    with pytest.raises(ValueError, match=r"vqbench.PVQ: .*num_codebooks"):
        vqbench.PVQ(10, num_codebooks=3)
    with pytest.raises(ValueError, match="not divisible"):
        vqbench.PVQ(10, num_codebooks=4)
    with pytest.raises(ValueError, match="last axis must have size dim=8"):
        vqbench.RVQ(8, codebook_size=4)(torch.zeros(3, 7))
    with pytest.raises(ValueError, match="num_codebooks=4"):
        vqbench.RVQ(8, codebook_size=4).decode(torch.zeros(3, 2, dtype=torch.long))


def test_state_dict_round_trip_reproduces_the_codes():
    x = _data(50, 8, seed=5)
    a = vqbench.AVQ(8, num_codebooks=2, codebook_size=8, estimator="ema")
    a.init_from_data(x)
    b = vqbench.AVQ(8, num_codebooks=2, codebook_size=8, estimator="ema")
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.encode(x), b.encode(x))


# ---------------------------------------------------------------------------- FSQ layer
def test_fsq_layer_shapes_codes_and_gradient():
    layer = vqbench.FSQ(8, bits=12)
    assert layer.levels == (8, 8, 8, 8) and layer.bits == 12
    x = _data(2, 3, 5, 8, seed=6).requires_grad_()
    out = layer(x)
    assert out.x_hat.shape == x.shape and out.codes.shape == (2, 3, 5, 4) and out.aux_loss.item() == 0.0
    assert out.codes.min() >= 0 and out.codes.max() < 8
    assert torch.allclose(layer.decode(layer.encode(x)), out.x_hat.detach())
    out.x_hat.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="levels or bits"):
        vqbench.FSQ(8, levels=[5, 5], bits=4)


# ---------------------------------------------------------------------------- devices and API
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_layers_run_on_cuda(estimator):
    x = _data(4, 6, 8, seed=7).cuda().requires_grad_()
    for cls, kwargs, M in LAYERS:
        layer = cls(8, estimator=estimator, replacement=True, replacement_every=1, **kwargs).cuda()
        layer.init_from_data(x.detach())
        for _ in range(2):
            out = layer(x)
            (out.x_hat.pow(2).mean() + out.aux_loss).backward()
        assert out.x_hat.device.type == "cuda" and out.codes.device.type == "cuda"
        layer.eval()
        cpu = layer.cpu()
        assert torch.equal(cpu(x.detach().cpu()).codes, cpu.encode(x.detach().cpu()))
    fsq = vqbench.FSQ(8, bits=16).cuda()
    assert fsq(x).x_hat.device.type == "cuda"


def test_help_shows_the_documented_api():
    text = pydoc.render_doc(vqbench.RVQ, renderer=pydoc.plaintext)
    for word in ("num_codebooks: 'int' = 4", "codebook_size: 'int' = 256", "estimator", "beta", "ema_decay",
                 "replacement", "forward", "encode", "decode", "Quantized"):
        assert word in text, word
    for name in vqbench.__all__:
        assert getattr(vqbench, name) is not None
        obj = getattr(vqbench, name)
        if callable(obj):
            assert obj.__doc__, name


def test_import_is_light_and_the_package_is_typed():
    code = "import sys, vqbench; print('torch' in sys.modules); vqbench.RVQ; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    assert (Path(vqbench.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError):
        vqbench.NoSuchLayer  # noqa: B018


def test_every_public_name_of_the_new_modules_has_a_docstring():
    import importlib
    import inspect

    modules = ["vqbench.nn", "vqbench.nn.layer", "vqbench.nn.layer_init", "vqbench.nn.codebook_layers", "vqbench.nn.fsq", "vqbench.nn.result", "vqbench.nn.checks",
               "vqbench.quantizers.fsq",
               "vqbench.training.rotation", "vqbench.training.diveq", "vqbench.training.gumbel",
               "vqbench.training.ema", "vqbench.training.estimator", "vqbench.training.registry",
               "vqbench.training.replacement"]
    for name in modules:
        module = importlib.import_module(name)
        assert module.__doc__, name
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # imported from elsewhere
            assert obj.__doc__, f"{name}.{attr}"
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if not meth.startswith("_") and (inspect.isfunction(fn) or isinstance(fn, property)):
                        assert fn.__doc__, f"{name}.{attr}.{meth}"
