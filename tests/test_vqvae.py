import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vqbench.experiments import vqvae as exp
from vqbench.models.vqvae import build_vqvae
from vqbench.nn import QuantizerLayer
from vqbench.quantizers import build_quantizer
from vqbench.run.config import ConfigError
from vqbench.run.schema import option_defaults, to_plain
from vqbench.training import OPTIMIZERS
from vqbench.training.ema import EMACodebooks, ema_targets

TINY_MODEL = {"latent_dim": 8, "hidden_channels": 16, "res_channels": 8, "res_blocks": 1, "downsamples": 2}
QUANTIZERS = {
    "vq": {"name": "vq", "num_codebooks": 1, "bits_per_codebook": 4, "beam_width": 4},
    "rvq": {"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 3, "beam_width": 4},
    "pvq": {"name": "pvq", "num_codebooks": 2, "bits_per_codebook": 3, "beam_width": 4},
    "avq": {"name": "avq", "num_codebooks": 2, "bits_per_codebook": 3, "beam_width": 4},
}


def _smooth_images(n, seed=0):
    """Images in [0, 1] with image-like spatial correlation (low-frequency noise, upsampled)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("qname", sorted(QUANTIZERS))
def test_model_shapes_for_each_quantizer(qname):
    torch.manual_seed(0)
    model = build_vqvae(TINY_MODEL, QUANTIZERS[qname])
    x = _smooth_images(3)
    M = QUANTIZERS[qname]["num_codebooks"]
    layers = [None] + [QuantizerLayer(model.quantizer, spec.estimator(model.quantizer, option_defaults("optimizer", name),
                                                                      torch.Generator()), replacement=False)
                       for name, spec in OPTIMIZERS.items() if name != "sf_diveq" or qname != "avq"]
    for layer in layers:
        out = model(x, layer)
        assert out.recon.shape == (3, 3, 32, 32)
        assert out.latents.shape == (3 * 8 * 8, 8)
        assert out.codes.shape == (3 * 8 * 8, M) and out.codes.dtype == torch.long
        assert int(out.codes.max()) < 8 if qname != "vq" else int(out.codes.max()) < 16
        assert out.aux_loss.dim() == 0
    # The hard bottleneck passes exactly decode(encode(z)) to the decoder.
    z = model.encode(x)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    assert torch.equal(model(x).codes, model.quantizer.encode(flat))
    # Three downsamples: 4x4 grid.
    deeper = build_vqvae({**TINY_MODEL, "downsamples": 3}, QUANTIZERS[qname])
    out = deeper(x)
    assert out.recon.shape == (3, 3, 32, 32) and out.latents.shape == (3 * 4 * 4, 8)
    assert deeper.latent_grid(32) == 4


def _cfg(tmp_path, qname="rvq", opt="nsvq", epochs=2, **over):
    cfg = {
        "seed": 3,
        "device": "cpu",
        "progress": False,
        "resume": False,
        "dataset": {"name": "image_folder", "root": str(tmp_path / "imgs"), "max_train": None, "max_test": None,
                    "cache_dir": str(tmp_path / "cache"), "genuine_test": None},
        "quantizer": dict(QUANTIZERS[qname]),
        "optimizer": option_defaults("optimizer", opt, batch_size=8, lr=0.002, lr_schedule="cosine", init="data",
                                     replacement={"num_batches": 2, "discard_threshold": 0.3},
                                     **({"ema_decay": 0.9} if opt == "kmeans" else {})),
        "experiment": {"name": "vqvae", "epochs": epochs, "eval_batch_size": 5, "eval_untrained": True,
                       "grid_images": 6, "model": dict(TINY_MODEL)},
    }
    for key, value in over.items():
        section, name = key.split("__")
        cfg[section][name] = value
    return cfg


@pytest.fixture
def image_tree(tmp_path):
    images = (_smooth_images(22, seed=1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(images):
        split = "train" if i < 16 else "test"
        d = tmp_path / "imgs" / split / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i:03d}.png")
    return tmp_path


def _objective(training, x, noise_state):
    training.noise_generator.set_state(noise_state)
    with torch.no_grad():
        out = training.model(x, training.layer)
        return (torch.nn.functional.mse_loss(out.recon, x) / training.data_variance + out.aux_loss).item()


@pytest.mark.parametrize("opt", ["nsvq", "ste", "kmeans"])
def test_one_training_step_lowers_the_loss(image_tree, opt):
    from vqbench.data.cifar import load_images

    cfg = _cfg(image_tree, "avq", opt, optimizer__batch_size=16, optimizer__lr=0.001)
    data = load_images(cfg["dataset"], 0)
    training = exp.Training(cfg, data, torch.device("cpu"))
    x = exp.to_unit(data.train, training.device)  # the whole set: one batch
    noise = training.noise_generator.get_state()
    before = _objective(training, x, noise)
    books = training.quantizer.codebooks.detach().clone()
    training.noise_generator.set_state(noise)
    training.train_epoch(data.train, progress=False)
    assert training.step == 1
    after = _objective(training, x, noise)
    assert after < before
    if opt == "kmeans":  # EMA, not Adam, moved the codebooks
        assert not torch.equal(books, training.quantizer.codebooks.detach())
        assert training.quantizer.codebooks.grad is None


def _assigned_means(targets, codes, K):
    """Per codebook and codeword: the mean of the targets assigned to it (loop reference)."""
    N, M, d = targets.shape
    means = torch.full((M, K, d), float("nan"))
    for m in range(M):
        for k in range(K):
            sel = codes[:, m] == k
            if sel.any():
                means[m, k] = targets[sel, m].mean(0)
    return means


@pytest.mark.parametrize("qname", ["vq", "pvq", "rvq", "avq"])
def test_ema_update_moves_codewords_to_assigned_means(qname):
    torch.manual_seed(0)
    q = build_quantizer(QUANTIZERS[qname], 8)
    q.codebooks.data.normal_()
    x = torch.randn(400, 8) * 1.5
    codes = q.encode(x)
    K = q.codebook_size
    targets = ema_targets(q, x, codes)
    # Targets by definition: VQ/PVQ the sub-vector, RVQ the residual of earlier stages,
    # AVQ x minus the other codebooks' selected codewords.
    sel = q.selected_codewords(codes).detach()
    if qname == "rvq":
        assert torch.allclose(targets[:, 1], x - sel[:, 0], atol=1e-5)
        assert torch.allclose(targets[:, 0], x)
    if qname == "avq":
        assert torch.allclose(targets[:, 0], x - sel[:, 1], atol=1e-5)
        assert torch.allclose(targets[:, 1], x - sel[:, 0], atol=1e-5)
    if qname == "pvq":
        assert torch.allclose(targets[:, 1], x[:, 4:])
    means = _assigned_means(targets, codes, K)
    used = ~means.isnan().any(-1)
    old = q.codebooks.detach().clone()

    # decay 0.5 from a pseudo-count of 1: c = (0.5 c_old + 0.5 n mean) / (0.5 + 0.5 n) (up to eps)
    ema = EMACodebooks(q, decay=0.5, eps=1e-9)
    ema.update(x, codes)
    n = torch.bincount((codes + torch.arange(codes.shape[1]) * K).flatten(), minlength=codes.shape[1] * K)
    n = n.view(-1, K).float()
    expected = (0.5 * old + 0.5 * n.unsqueeze(-1) * means.nan_to_num()) / (0.5 + 0.5 * n).unsqueeze(-1)
    assert torch.allclose(q.codebooks.detach(), expected, atol=1e-5)
    dist_old = (old - means).norm(dim=-1)[used]
    dist_new = (q.codebooks.detach() - means).norm(dim=-1)[used]
    assert (dist_new < dist_old).all()
    assert torch.allclose(q.codebooks.detach()[~used], old[~used], atol=1e-5)  # unused stay put

    # decay 0: straight to the assigned means
    q.codebooks.data.copy_(old)
    EMACodebooks(q, decay=0.0, eps=1e-9).update(x, codes)
    assert torch.allclose(q.codebooks.detach()[used], means[used], atol=1e-5)


def test_checkpoint_round_trip_and_config_check(image_tree):
    from vqbench.data.cifar import load_images

    cfg = _cfg(image_tree, "pvq", "kmeans", epochs=1)
    data = load_images(cfg["dataset"], 0)
    a = exp.Training(cfg, data, torch.device("cpu"))
    a.train_epoch(data.train, progress=False)
    a.epoch = 1
    path = image_tree / "ckpt.pt"
    exp.save_checkpoint(a, path)
    b = exp.Training(cfg, data, torch.device("cpu"))
    exp.load_checkpoint(b, path)
    sa, sb = a.state_dict(), b.state_dict()
    for key in ("model", "ema"):
        assert sa[key].keys() == sb[key].keys()
        assert all(torch.equal(sa[key][k], sb[key][k]) for k in sa[key])
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    assert torch.equal(sa["rng"]["noise_generator"], sb["rng"]["noise_generator"])
    assert b.epoch == 1 and b.step == a.step
    other = copy.deepcopy(cfg)
    other["optimizer"]["lr"] = 0.5
    c = exp.Training(other, data, torch.device("cpu"))
    with pytest.raises(ConfigError, match="optimizer.lr=0.002 in the checkpoint, 0.5 now"):
        exp.load_checkpoint(c, path)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("qname,opt", [("rvq", "nsvq"), ("avq", "kmeans"), ("pvq", "ste")])
def test_resume_matches_uninterrupted_run(image_tree, monkeypatch, qname, opt):
    cpu = torch.device("cpu")
    cfg = _cfg(image_tree, qname, opt, epochs=3)
    cfg["quantizer"]["bits_per_codebook"] = 5
    # Replacement every batch (but the last two), so its RNG is used after the resume point.
    cfg["optimizer"]["replacement"].update(num_batches=1, discard_threshold=0.5)
    full = exp.run(cfg, image_tree / "full", cpu)
    assert full["metrics"]["codewords_replaced"] > 0

    real_epoch = exp.Training.train_epoch

    def stop_in_epoch_2(self, train, progress):
        if self.epoch == 1:
            raise _Stop  # killed in the middle of the second epoch
        return real_epoch(self, train, progress)

    monkeypatch.setattr(exp.Training, "train_epoch", stop_in_epoch_2)
    with pytest.raises(_Stop):
        exp.run(cfg, image_tree / "stopped", cpu)
    monkeypatch.setattr(exp.Training, "train_epoch", real_epoch)
    torch.manual_seed(12345)  # the resumed run must not depend on the global RNG at start
    resumed = exp.run({**cfg, "resume": True}, image_tree / "stopped", cpu)

    a = torch.load(image_tree / "full" / exp.CHECKPOINT, weights_only=True)
    b = torch.load(image_tree / "stopped" / exp.CHECKPOINT, weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    drop = ("train_seconds",)
    assert {k: v for k, v in full["metrics"].items() if k not in drop} == {
        k: v for k, v in resumed["metrics"].items() if k not in drop
    }


def test_run_writes_metrics_grid_and_history(image_tree):
    out = exp.run(_cfg(image_tree, "avq", "nsvq", epochs=1), image_tree / "run", torch.device("cpu"))
    m = out["metrics"]
    assert m["bits"] == 6 and m["latent_positions"] == 64 and m["bits_per_image"] == 384
    assert m["test_images"] == 6 and m["train_images"] == 16 and m["steps"] == 2
    assert np.isfinite([m["psnr"], m["ssim"], m["mse"], m["psnr_untrained"]]).all()
    assert m["psnr"] == pytest.approx(10 * np.log10(1 / m["mse"]), abs=3)  # per-image mean vs pooled
    assert 1 <= m["perplexity_0"] <= 8 and m["encode_wmops"] > 0
    grid = Image.open(image_tree / "run" / exp.GRID)
    assert grid.size == (2 + 8 * 34, 2 + 2 * 34)  # 6 originals + 6 reconstructions, 8 per row
    history = json.loads((image_tree / "run" / exp.HISTORY).read_text())
    assert [h["epoch"] for h in history] == [1]


@pytest.mark.parametrize("qname", ["rvq", "avq"])
def test_evaluating_only_after_the_last_epoch_gives_the_same_result(image_tree, qname):
    """experiment.eval_every draws no random numbers: the final metrics are bit-identical, the
    skipped epochs have no test entries, and a record of one setting is a finished job of the other."""
    from vqbench.run.attempts import job_key

    cfg_every, cfg_last = _cfg(image_tree, qname, "nsvq", epochs=3), _cfg(image_tree, qname, "nsvq", epochs=3,
                                                                          experiment__eval_every=0)
    every = exp.run(cfg_every, image_tree / "every", torch.device("cpu"))
    last = exp.run(cfg_last, image_tree / "last", torch.device("cpu"))
    for key in ("psnr", "ssim", "ssim_legacy", "mse", "psnr_pooled", "train_loss", "train_psnr", "perplexity_0"):
        assert last["metrics"][key] == every["metrics"][key], key
    tested = [[("test_psnr" in h) for h in json.loads((image_tree / run / exp.HISTORY).read_text())]
              for run in ("every", "last")]
    assert tested == [[True, True, True], [False, False, True]]
    assert job_key(cfg_every) == job_key(cfg_last)  # resume=true takes either record as the job's
    assert job_key(cfg_every) != job_key(_cfg(image_tree, qname, "nsvq", epochs=2))
    two = exp.run(_cfg(image_tree, qname, "nsvq", epochs=3, experiment__eval_every=2), image_tree / "two",
                  torch.device("cpu"))
    assert ["test_psnr" in h for h in json.loads((image_tree / "two" / exp.HISTORY).read_text())] == [False, True, True]
    assert two["metrics"]["psnr"] == every["metrics"]["psnr"]


def test_genuine_test_images_are_scored_beside_the_test_split(image_tree):
    """dataset.genuine_test: the same test images with other pixels give their own metrics; the
    very test images give exactly the test metrics (all of them: never subset)."""
    test = torch.stack([torch.from_numpy(np.asarray(Image.open(p))).clone()
                        for p in sorted((image_tree / "imgs" / "test").rglob("*.png"))])  # ImageFolder order
    np.savez(image_tree / "same.npz", test_images=test.numpy())
    cfg = _cfg(image_tree, "rvq", "nsvq", epochs=1, dataset__genuine_test=str(image_tree / "same.npz"),
               experiment__eval_untrained=False)
    m = exp.run(cfg, image_tree / "run", torch.device("cpu"))["metrics"]
    assert m["genuine_images"] == 6
    for key in ("psnr", "psnr_pooled", "ssim", "ssim_legacy", "mse"):
        assert m[f"{key}_genuine"] == pytest.approx(m[key], rel=1e-9), key
    assert m["psnr_pooled"] == pytest.approx(10 * math.log10(1 / m["mse"]), rel=1e-12) and m["psnr_pooled"] < m["psnr"]
    assert m["ssim_legacy"] != pytest.approx(m["ssim"], abs=1e-4)
    np.savez(image_tree / "noisy.npz", test_images=255 - test.numpy())  # other pixels: the negatives
    cfg["dataset"]["genuine_test"] = str(image_tree / "noisy.npz")
    m2 = exp.run(cfg, image_tree / "run2", torch.device("cpu"))["metrics"]
    assert m2["psnr"] == pytest.approx(m["psnr"], rel=1e-9)  # the test split's score is untouched
    assert abs(m2["psnr_genuine"] - m2["psnr"]) > 0.01 and m2["ssim_genuine"] != m2["ssim"]
    assert "genuine_images" not in exp.run(_cfg(image_tree, "rvq", "nsvq", epochs=1), image_tree / "run3",
                                           torch.device("cpu"))["metrics"]


def test_validate_names_the_bad_field(image_tree):
    cfg = _cfg(image_tree)
    exp.validate(cfg)
    bad = copy.deepcopy(cfg)
    bad["experiment"]["model"]["latent_dim"] = 7
    bad["quantizer"] = dict(QUANTIZERS["pvq"])
    with pytest.raises(ConfigError, match="latent_dim"):
        exp.validate(bad)
    bad = copy.deepcopy(cfg)
    bad["dataset"]["name"] = "toy"
    with pytest.raises(ConfigError, match="dataset=cifar10 or dataset=image_folder"):
        exp.validate(bad)
    bad = copy.deepcopy(cfg)
    bad["experiment"]["epochs"] = 0
    with pytest.raises(ConfigError, match="experiment.epochs"):
        exp.validate(bad)
    for value in (-1, 1.5, True):
        bad = copy.deepcopy(cfg)
        bad["experiment"]["eval_every"] = value
        with pytest.raises(ConfigError, match="experiment.eval_every must be"):
            exp.validate(bad)


@pytest.mark.parametrize("preset", ["vqvae", "vqvae_quick"])
def test_presets_compose_and_validate(preset):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from vqbench.run.config import validate

    with initialize_config_module("vqbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={preset}", "quantizer=avq", "optimizer=kmeans"])
        dev = compose("config", overrides=[f"experiment={preset}", "dataset=image_folder", "dataset.root=/x"])
    plain = to_plain(cfg)
    validate(plain)
    exp.validate(plain)
    assert plain["experiment"]["model"]["latent_dim"] == 64
    assert plain["quantizer"] == {"name": "avq", "num_codebooks": 4, "bits_per_codebook": 6, "beam_width": 16,
                                  "search": "beam"}
    assert plain["dataset"]["name"] == "cifar10" and plain["optimizer"]["name"] == "kmeans"
    assert OmegaConf.to_container(dev)["dataset"]["name"] == "image_folder"


@pytest.mark.parametrize("opt", ["nsvq", "ste", "kmeans"])
def test_optimizer_init_is_honoured_in_latent_units(image_tree, opt):
    """optimizer.init=data: every codeword of a PVQ is a sub-vector of one of the untrained
    encoder's latents; init=random: N(0, (0.01 sigma)^2) with sigma the latents' std (not an
    absolute 0.01), whatever the optimizer."""
    from vqbench.data.cifar import load_images

    stds = {}
    for init in ("data", "random"):
        cfg = _cfg(image_tree, "pvq", opt, optimizer__init=init)
        data = load_images(cfg["dataset"], 0)
        training = exp.Training(cfg, data, torch.device("cpu"))
        with torch.no_grad():
            z = training.model.encode(exp.to_unit(data.train, torch.device("cpu")))
        latents = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        books = training.quantizer.codebooks.detach()
        sub = training.quantizer.split(latents)  # [N, M, d]
        if init == "data":
            for m in range(books.shape[0]):
                gap = (books[m][:, None, :] - sub[None, :, m, :]).abs().amax(dim=-1).min(dim=1).values
                assert gap.max() < 1e-5 * latents.abs().max(), m
        else:
            sigma = latents.std().item()
            stds[init] = books.std().item()
            assert 0.005 * sigma < stds[init] < 0.02 * sigma, (stds[init], sigma)
            assert abs(books.mean().item()) < 0.01 * sigma
    # the latents of this tiny untrained encoder are far from unit scale, so a random start in
    # absolute units (0.01) would fail the check above
    assert not 0.5 < stds["random"] / 0.01 < 2
