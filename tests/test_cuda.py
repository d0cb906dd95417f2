"""CUDA: the same runs on the GPU where one is present. Every test here is skipped with the
visible reason "no CUDA" elsewhere (`pytest -ra` lists them). The CPU side of device
portability (a checkpoint resumed on another kind of device) is tested in
test_bad_runs.py / test_bad_input_limits.py."""

import json
import logging

import pytest
import torch
from bad_input import TOY, execute, png_tree
from test_bad_runs import _vqvae_cfg

from vqbench.experiments import vqvae as vqvae_exp
from vqbench.quantizers import build_quantizer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
CUDA_TOY = [o for o in TOY if o != "device=cpu"] + ["device=cuda"]


@cuda
@pytest.mark.parametrize("extra", [[], ["dataset.fresh_batches=true"], ["quantizer=avq"]])
def test_toy_run_on_cuda(tmp_path, extra):
    assert execute(tmp_path / "run", *CUDA_TOY, *extra) == 0
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["environment"]["device"].startswith("cuda")
    assert record["metrics"]["encode_vectors_per_s"] > 0 and record["metrics"]["mse"] < 8.0  # below the variance


@cuda
def test_kmeans_on_cuda_says_it_runs_on_the_cpu(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert execute(tmp_path / "run", *[o for o in CUDA_TOY if not o.startswith("optimizer.steps")],
                       "optimizer=kmeans") == 0
    assert "optimizer=kmeans runs on the CPU" in caplog.text


@cuda
@pytest.mark.parametrize("name", ["vq", "rvq", "pvq", "avq"])
def test_quantizer_encodes_the_same_on_cpu_and_cuda(name):
    torch.backends.cuda.matmul.allow_tf32 = False  # exact float32 products, as on the CPU
    q = build_quantizer({"name": name, "num_codebooks": 1 if name == "vq" else 4, "bits_per_codebook": 5,
                         "beam_width": 8}, 16)
    g = torch.Generator().manual_seed(0)
    q.codebooks.data = torch.randn(q.codebooks.shape, generator=g)
    x = torch.randn(4000, 16, generator=g)
    cpu = q.encode(x)
    gpu = q.cuda().encode(x.cuda()).cpu()
    # the same codes, except where two candidates tie to float rounding
    assert (cpu == gpu).all(1).float().mean() > 0.999
    err_cpu = (x - q.cpu().decode(cpu)).pow(2).sum(1)
    err_gpu = (x - q.decode(gpu)).pow(2).sum(1)
    assert torch.allclose(err_cpu, err_gpu, rtol=1e-4, atol=1e-5)


@cuda
def test_one_epoch_vqvae_on_cuda_then_resumed_on_cpu(tmp_path, caplog):
    png_tree(tmp_path / "imgs")
    cfg = {**_vqvae_cfg(tmp_path, epochs=1), "device": "cuda"}
    out = vqvae_exp.run(cfg, tmp_path / "run", torch.device("cuda"))
    assert out["metrics"]["epochs"] == 1 and 0 < out["metrics"]["psnr"] < 60
    more = {**cfg, "device": "cpu", "resume": True, "experiment": {**cfg["experiment"], "epochs": 2}}
    with caplog.at_level(logging.WARNING):
        again = vqvae_exp.run(more, tmp_path / "run", torch.device("cpu"))
    assert again["metrics"]["epochs"] == 2
    assert "written on another kind of device" in caplog.text
