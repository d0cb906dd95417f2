"""VQ-VAE experiment: train an image autoencoder with the configured quantizer as its bottleneck
and report reconstruction quality on the test images.

    vqbench experiment=vqvae quantizer=avq optimizer=nsvq quantizer.bits_per_codebook=6

* Bottleneck training (``optimizer.name``): nsvq (noise substitution), ste (codebook +
  beta * commitment loss) or kmeans = EMA codebook updates with a straight-through encoder.
* Loss: pixel MSE divided by the training images' variance (as in the sonnet VQ-VAE
  example) plus the bottleneck's auxiliary loss; Adam over encoder, decoder and (nsvq/ste)
  the codebooks; dead codewords are replaced as in the foundation's gradient training.
* Every epoch: a pass over the shuffled training images, an evaluation on the test images,
  and an atomic checkpoint (model, optimizer, schedule, EMA and replacement state, RNG
  states, epoch, history). ``resume=true`` continues from ``<run dir>/checkpoint.pt`` and
  ends with exactly the parameters of an uninterrupted run (same seed, same device).
  ``resume=true experiment.epochs=N`` extends a run (a finished one too) to N epochs; the
  learning-rate schedule is then recomputed for the new total (cosine rises again).
* Metrics: test PSNR (dB, per-image mean, images in [0, 1]), SSIM, MSE, per-codebook
  perplexity and usage, bits per latent vector and per image, encoding complexity per
  latent vector; ``reconstructions.png`` shows test originals above their reconstructions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..progress import progress as progress_bar

from ..atomic import atomic_path
from ..complexity import complexity_metrics, encode_ops
from ..config import ConfigError, check_positive, check_quantizer_fits, check_range
from ..data.cifar import ImageSplits, load_images
from ..data.download import DownloadError
from ..errors import write_failed
from ..image_metrics import psnr, ssim
from ..metrics import code_statistics
from ..models.vqvae import VQVAE, build_vqvae
from ..results import write_json_atomic
from ..training.ema import EMACodebooks
from ..training.gradient import make_scheduler
from ..training.init import init_from_data
from ..training.replacement import CodewordReplacer

BOTTLENECK = {"nsvq": "nsvq", "ste": "ste", "kmeans": "ema"}
DATASETS = ("cifar10", "image_folder")
CHECKPOINT = "checkpoint.pt"
GRID = "reconstructions.png"
HISTORY = "history.json"
CHECKPOINT_FORMAT = 1
# Settings that may change between a run and its resumption: they do not change what was
# trained so far (the data cache's location; the epoch count, so a run can be extended).
RESUME_FREE = ("resume", "progress", "device", "hydra", "dataset.cache_dir", "experiment.epochs")
INIT_IMAGES = 1024  # training images whose latents seed the codebooks (optimizer.init=data)


# ---------------------------------------------------------------------------- validation
def validate(cfg: Mapping[str, Any]) -> None:
    d, e = cfg["dataset"], cfg["experiment"]
    if d.get("name") not in DATASETS:
        raise ConfigError(f"experiment=vqvae needs dataset=cifar10 or dataset=image_folder, got dataset={d.get('name')!r}")
    check_positive(d, "dataset", "max_train", "max_test", allow_none=True)
    check_positive(e, "experiment", "epochs", "eval_batch_size", "grid_images")
    m = e["model"]
    check_positive(m, "experiment.model", "latent_dim", "hidden_channels", "res_channels", "downsamples")
    check_range("experiment.model.res_blocks", m["res_blocks"], 0)
    check_quantizer_fits(cfg, int(m["latent_dim"]), "experiment.model.latent_dim")


# ---------------------------------------------------------------------------- helpers
def to_unit(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float32 in [0, 1] on ``device``."""
    return images.to(device, non_blocking=True).float().div_(255.0)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of ``epoch``: a function of (seed, epoch) only, so resuming reproduces it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


@torch.no_grad()
def evaluate(model: VQVAE, images: torch.Tensor, batch_size: int, device: torch.device) -> dict[str, float]:
    """Test metrics with hard quantization: per-image mean PSNR/SSIM/MSE and code statistics."""
    model.eval()
    psnrs, ssims, mses, codes = [], [], [], []
    for start in range(0, images.shape[0], batch_size):
        x = to_unit(images[start : start + batch_size], device)
        out = model(x, "hard")
        recon = out.recon.clamp(0.0, 1.0)
        psnrs.append(psnr(recon, x).cpu())
        ssims.append(ssim(recon, x).cpu())
        mses.append((recon.double() - x.double()).pow(2).flatten(1).mean(1).cpu())
        codes.append(out.codes.cpu())
    model.train()
    metrics = {
        "psnr": torch.cat(psnrs).mean().item(),
        "ssim": torch.cat(ssims).mean().item(),
        "mse": torch.cat(mses).mean().item(),
    }
    metrics.update(code_statistics(torch.cat(codes), model.quantizer.codebook_size))
    return metrics


@torch.no_grad()
def save_grid(model: VQVAE, images: torch.Tensor, path: Path, device: torch.device, per_row: int = 8) -> None:
    """PNG of test images (odd rows) above their reconstructions (even rows), written atomically."""
    from torchvision.utils import save_image

    model.eval()
    x = to_unit(images, device)
    recon = model(x, "hard").recon.clamp(0.0, 1.0)
    model.train()
    rows = []
    for start in range(0, x.shape[0], per_row):
        rows += [x[start : start + per_row], recon[start : start + per_row]]
        if rows[-1].shape[0] < per_row:  # pad a short last pair of rows
            pad = per_row - rows[-1].shape[0]
            rows[-2] = torch.cat([rows[-2], rows[-2].new_ones(pad, *x.shape[1:])])
            rows[-1] = torch.cat([rows[-1], rows[-1].new_ones(pad, *x.shape[1:])])
    try:
        with atomic_path(path) as tmp:
            save_image(torch.cat(rows).cpu(), tmp, nrow=per_row, padding=2, pad_value=1.0, format="PNG")
    except OSError as err:
        raise write_failed(path, err) from None


def pixel_variance(images: torch.Tensor) -> float:
    """Variance of uint8 pixel values scaled to [0, 1], from their 256-bin histogram (exact, cheap)."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    n = counts.sum()
    mean = (counts * values).sum() / n
    return ((counts * (values - mean) ** 2).sum() / (n - 1)).item()


def grid_indices(n: int, count: int) -> torch.Tensor:
    """``count`` test images spread evenly over the (class-ordered) test set."""
    return torch.linspace(0, n - 1, min(n, count)).round().long()


def comparable(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The settings a checkpoint must share with a run that resumes it."""
    return {k: comparable(v, f"{prefix}{k}.") if isinstance(v, Mapping) else v
            for k, v in cfg.items() if f"{prefix}{k}" not in RESUME_FREE}


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix[:-1]}={a!r} in the checkpoint, {b!r} now"


# ---------------------------------------------------------------------------- training state
class Training:
    """Everything that evolves during training, with a state_dict for checkpoints."""

    def __init__(self, cfg: Mapping[str, Any], data: ImageSplits, device: torch.device):
        e, o = cfg["experiment"], cfg["optimizer"]
        self.cfg = cfg
        self.device = device
        self.seed = int(cfg["seed"])
        self.epochs = int(e["epochs"])
        self.batch_size = int(o["batch_size"])
        self.method = BOTTLENECK[o["name"]]
        self.beta = float(o.get("beta", 0.0))  # nsvq has no commitment loss (and no beta)
        n_train = data.train.shape[0]
        self.steps_per_epoch = math.ceil(n_train / self.batch_size)
        self.total_steps = self.epochs * self.steps_per_epoch

        torch.manual_seed(self.seed)
        self.model = build_vqvae(e["model"], cfg["quantizer"]).to(device)
        self.quantizer = self.model.quantizer
        self.generator = torch.Generator().manual_seed(self.seed)  # codebook init and replacement
        self.noise_generator = torch.Generator(device=device).manual_seed(self.seed + 1)  # NSVQ noise
        if o["init"] == "data":
            self.init_codebooks(data.train)

        codebooks = self.quantizer.codebooks
        params = [p for p in self.model.parameters() if not (self.method == "ema" and p is codebooks)]
        self.optimizer = torch.optim.Adam(params, lr=float(o["lr"]))
        self.scheduler = make_scheduler(self.optimizer, o["lr_schedule"], self.total_steps)
        self.ema = EMACodebooks(self.quantizer, decay=float(o["ema_decay"])) if self.method == "ema" else None
        self.replacer = CodewordReplacer.from_config(o["replacement"], codebooks, self.generator)
        self.data_variance = pixel_variance(data.train)  # loss normaliser
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.untrained: dict[str, float] | None = None
        self.train_seconds = 0.0

    @torch.no_grad()
    def init_codebooks(self, train: torch.Tensor) -> None:
        """Seed the codebooks from the untrained encoder's latents of random training images."""
        pick = torch.randperm(train.shape[0], generator=self.generator)[:INIT_IMAGES]
        z = self.model.encode(to_unit(train[pick], self.device))
        latents = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        init_from_data(self.quantizer, latents, self.generator)

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, train: torch.Tensor, progress: bool) -> dict[str, float]:
        self.model.train()
        order = epoch_permutation(train.shape[0], self.seed, self.epoch)
        bar = progress_bar(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{self.epochs}", enabled=progress)
        loss_sum = psnr_sum = 0.0
        seen = 0
        for i in bar:
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = to_unit(train[idx], self.device)
            out = self.model(x, self.method, self.beta, self.noise_generator)
            loss = F.mse_loss(out.recon, x) / self.data_variance + out.aux_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(out.latents, out.codes)
            if self.replacer is not None:
                self.replace_dead(out.codes)
            self.step += 1
            with torch.no_grad():
                batch_psnr = psnr(out.recon.detach().clamp(0, 1), x).mean().item()
            loss_sum += loss.item() * x.shape[0]
            psnr_sum += batch_psnr * x.shape[0]
            seen += x.shape[0]
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{batch_psnr:.2f}")
        bar.close()
        return {"train_loss": loss_sum / seen, "train_psnr": psnr_sum / seen}

    def replace_dead(self, codes: torch.Tensor) -> None:
        self.replacer.record(codes)
        closes_window = (self.step + 1) % self.replacer.num_batches == 0
        before = self.quantizer.codebooks.detach().clone() if (closes_window and self.ema is not None) else None
        replaced = self.replacer.maybe_replace(self.step, self.total_steps)
        if replaced and before is not None:  # restart the EMA of the replaced codewords
            self.ema.reset((self.quantizer.codebooks.detach() != before).any(dim=-1))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
               "noise_generator": self.noise_generator.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "config": comparable(self.cfg),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "replacer": None if self.replacer is None else {
                "batches_used": self.replacer.batches_used, "total_replaced": self.replacer.total_replaced},
            "rng": rng,
            "history": self.history,
            "untrained": self.untrained,
            "train_seconds": self.train_seconds,
        }

    def load_state_dict(self, state: Mapping[str, Any], path: Path) -> None:
        check_resumable(state, self.cfg, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.replacer is not None:
            self.replacer.batches_used.copy_(state["replacer"]["batches_used"])
            self.replacer.total_replaced = int(state["replacer"]["total_replaced"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        self.noise_generator.set_state(rng["noise_generator"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])
        self.untrained = state["untrained"]
        self.train_seconds = float(state["train_seconds"])


def check_resumable(state: Mapping[str, Any], cfg: Mapping[str, Any], path: Path) -> None:
    """Refuse (ConfigError) a checkpoint of other settings, or more epochs than configured."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"resume=true: {path} has checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    diff = _first_difference(comparable(state["config"]), comparable(cfg))
    if diff:
        raise ConfigError(f"resume=true: {path} belongs to a different run ({diff})")
    done, want = int(state["epoch"]), int(cfg["experiment"]["epochs"])
    if done > want:
        raise ConfigError(f"resume=true: {path} has trained {done} epochs, more than experiment.epochs={want} "
                          f"(set experiment.epochs >= {done} to extend it)")


def save_checkpoint(training: Training, path: Path) -> None:
    """Write the checkpoint atomically (temporary file beside ``path``, then rename); a
    failed write (disk full, ...) leaves the previous checkpoint and raises RunFailed."""
    try:
        with atomic_path(path) as tmp:
            torch.save(training.state_dict(), tmp)
    except (OSError, RuntimeError) as err:  # torch reports a full disk as a RuntimeError
        raise write_failed(path, err) from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # On the CPU first: generator states must stay CPU tensors; load_state_dict moves the rest.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unreadable / truncated file: say which one
        raise ConfigError(f"resume=true: cannot read checkpoint {path} ({err})") from None


def load_checkpoint(training: Training, path: Path) -> None:
    training.load_state_dict(read_checkpoint(path), path)


# ---------------------------------------------------------------------------- the experiment
def run(cfg: Mapping[str, Any], run_dir: Path, device: torch.device) -> dict[str, Any]:
    e = cfg["experiment"]
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = bool(cfg.get("progress", True))
    timings: dict[str, float] = {}

    ckpt = run_dir / CHECKPOINT
    state = None
    if cfg.get("resume") and ckpt.is_file():  # refuse a mismatch before decoding any data
        state = read_checkpoint(ckpt)
        check_resumable(state, cfg, ckpt)

    t0 = time.perf_counter()
    try:
        data = load_images(cfg["dataset"], int(cfg["seed"]))
    except DownloadError as err:
        raise ConfigError(str(err)) from None
    timings["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    training = Training(cfg, data, device)
    if state is not None:
        training.load_state_dict(state, ckpt)
        tqdm.write(f"vqbench: resumed {ckpt} after epoch {training.epoch}/{training.epochs}")
    elif cfg.get("resume"):
        tqdm.write(f"vqbench: resume=true but {ckpt} does not exist; starting from scratch")
    timings["setup"] = time.perf_counter() - t0

    eval_batch = int(e["eval_batch_size"])
    timings["eval"] = 0.0
    if e.get("eval_untrained", False) and training.untrained is None:
        t0 = time.perf_counter()
        training.untrained = evaluate(training.model, data.test, eval_batch, device)
        timings["eval"] += time.perf_counter() - t0

    timings["train"] = 0.0
    while training.epoch < training.epochs:
        t0 = time.perf_counter()
        stats = training.train_epoch(data.train, progress)
        train_time = time.perf_counter() - t0
        training.train_seconds += train_time
        timings["train"] += train_time
        t0 = time.perf_counter()
        test = evaluate(training.model, data.test, eval_batch, device)
        timings["eval"] += time.perf_counter() - t0
        training.epoch += 1
        training.history.append({"epoch": training.epoch, **stats, **{f"test_{k}": v for k, v in test.items()},
                                 "train_seconds": train_time})
        save_checkpoint(training, ckpt)
        write_json_atomic(run_dir / HISTORY, training.history)
        tqdm.write(
            f"epoch {training.epoch}/{training.epochs}: train loss {stats['train_loss']:.4f}, "
            f"test PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.4f}, {train_time:.0f} s"
        )

    t0 = time.perf_counter()
    save_grid(training.model, data.test[grid_indices(data.test.shape[0], int(e["grid_images"]))], run_dir / GRID, device)
    timings["grid"] = time.perf_counter() - t0
    return {"metrics": final_metrics(training, data), "timings": timings}


def final_metrics(training: Training, data: ImageSplits) -> dict[str, float]:
    q = training.quantizer
    last = training.history[-1]
    positions = training.model.latent_grid(data.test.shape[-1]) * training.model.latent_grid(data.test.shape[-2])
    metrics = {
        "bits": float(q.bits),
        "psnr": last["test_psnr"],
        "ssim": last["test_ssim"],
        "mse": last["test_mse"],
    }
    metrics.update({k[len("test_"):]: v for k, v in last.items() if k.startswith(("test_perplexity", "test_usage"))})
    metrics.update({
        "latent_positions": float(positions),
        "bits_per_image": float(positions * q.bits),
        "encode_ops": float(encode_ops(q)),
        **complexity_metrics(q),
        "train_loss": last["train_loss"],
        "train_psnr": last["train_psnr"],
        "epochs": float(training.epoch),
        "steps": float(training.step),
        "train_images": float(data.train.shape[0]),
        "test_images": float(data.test.shape[0]),
        "train_seconds": training.train_seconds,
        "parameters": float(sum(p.numel() for p in training.model.parameters())),
        "codewords_replaced": float(training.replacer.total_replaced if training.replacer else 0),
    })
    if training.untrained is not None:
        metrics["psnr_untrained"] = training.untrained["psnr"]
        metrics["ssim_untrained"] = training.untrained["ssim"]
    return metrics
