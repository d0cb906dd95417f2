"""VQ-VAE training state: model, optimizer, schedule, EMA and replacement state, RNG states,
epoch and history; one epoch of training; atomic checkpoints that a resumed run continues
from exactly (same seed, same device: the same parameters as an uninterrupted run)."""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..common.atomic import atomic_path
from ..common.checks import ConfigError
from ..common.errors import write_failed
from ..common.progress import progress as progress_bar
from ..common.provenance import RESULT_FREE, drop_added_defaults, drop_keys, same_data
from ..data.cifar import ImageSplits
from ..metrics.images import psnr
from ..models.vqvae import build_vqvae
from ..nn.layer import QuantizerLayer
from ..quantizers import codebook_free
from ..training import optimizer_spec
from ..training.gradient import make_scheduler
from ..training.init import initialize_codebooks
from ..training.replacement import CodewordReplacer
from .vqvae_eval import to_unit

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1
# Settings that may change between a run and its resumption: those that never change a result
# (common/provenance.py: the data's location among them, its checksums are compared instead),
# the epoch count (a run can be extended), the extra test set scored after training, and the
# budget keys a VQ-VAE ignores, which every optimizer accepts for sweeps.
RESUME_FREE = RESULT_FREE + ("experiment.epochs", "optimizer.steps", "optimizer.lloyd_iterations",
                             "optimizer.alternations", "dataset.genuine_test")
INIT_IMAGES = 1024  # training images whose latents set the codebooks' start (optimizer.init)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of ``epoch``: a function of (seed, epoch) only, so resuming reproduces it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def pixel_variance(images: torch.Tensor) -> float:
    """Variance of uint8 pixel values scaled to [0, 1], from their 256-bin histogram (exact, cheap)."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    n = counts.sum()
    mean = (counts * values).sum() / n
    return ((counts * (values - mean) ** 2).sum() / (n - 1)).item()


def comparable(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint must share with a run that resumes it."""
    return drop_added_defaults(drop_keys(cfg, RESUME_FREE))


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix[:-1]}={a!r} in the checkpoint, {b!r} now"


class Training:
    """Everything that evolves during training, with a state_dict for checkpoints."""

    def __init__(self, cfg: Mapping[str, Any], data: ImageSplits, device: torch.device):
        e, o = cfg["experiment"], cfg["optimizer"]
        self.cfg = cfg
        self.device = device
        self.data_record: dict[str, Any] | None = None  # the data's checksums, saved in checkpoints
        self.seed = int(cfg["seed"])
        self.epochs = int(e["epochs"])
        self.batch_size = int(o["batch_size"])
        n_train = data.train.shape[0]
        self.steps_per_epoch = math.ceil(n_train / self.batch_size)
        self.total_steps = self.epochs * self.steps_per_epoch

        torch.manual_seed(self.seed)
        self.model = build_vqvae(e["model"], cfg["quantizer"]).to(device)
        self.quantizer = self.model.quantizer
        self.generator = torch.Generator().manual_seed(self.seed)  # codebook init and replacement
        self.noise_generator = torch.Generator(device=device).manual_seed(self.seed + 1)  # NSVQ noise
        self.free = codebook_free(self.quantizer)  # FSQ: its own straight-through layer, no codebooks
        if self.free:
            self.layer = self.quantizer
        else:
            self.init_codebooks(data.train, o["init"])
            # The bottleneck is a quantizer layer around the model's quantizer with the optimizer's
            # estimator (its state: EMA averages) and the run's codeword replacement.
            self.layer = QuantizerLayer(self.quantizer, optimizer_spec(o).estimator(self.quantizer, o, self.noise_generator),
                                        replacement=False)
            self.layer.replacer = CodewordReplacer.from_config(o["replacement"], self.quantizer, self.generator)
            self.layer.initialized.fill_(True)  # init_codebooks above
        codebooks = getattr(self.quantizer, "codebooks", None)
        by_gradient = self.free or self.layer.estimator.codebooks_by_gradient
        params = [p for p in self.model.parameters() if by_gradient or p is not codebooks]
        self.optimizer = torch.optim.Adam(params, lr=float(o["lr"]))
        self.scheduler = make_scheduler(self.optimizer, o["lr_schedule"], self.total_steps)
        self.data_variance = pixel_variance(data.train)  # loss normaliser
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.untrained: dict[str, float] | None = None
        self.train_seconds = 0.0

    @torch.no_grad()
    def init_codebooks(self, train: torch.Tensor, how: str) -> None:
        """Start the codebooks as ``optimizer.init`` says, in latent units: from the untrained
        encoder's latents of random training images (``data``), or N(0, (0.01 sigma)^2) with
        sigma the std of those latents (``random``), as for raw vectors (training/init.py)."""
        pick = torch.randperm(train.shape[0], generator=self.generator)[:INIT_IMAGES]
        z = self.model.encode(to_unit(train[pick], self.device))
        latents = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        initialize_codebooks(self.quantizer, latents, how, self.generator)

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
            out = self.model(x, self.layer)
            loss = F.mse_loss(out.recon, x) / self.data_variance + out.aux_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.layer.after_step(batches_left=self.total_steps - self.step - 1)  # EMA, codeword replacement
            self.step += 1
            with torch.no_grad():
                batch_psnr = psnr(out.recon.detach().clamp(0, 1), x).mean().item()
            loss_sum += loss.item() * x.shape[0]
            psnr_sum += batch_psnr * x.shape[0]
            seen += x.shape[0]
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{batch_psnr:.2f}", refresh=False)
        bar.close()
        return {"train_loss": loss_sum / seen, "train_psnr": psnr_sum / seen}

    @property
    def replacer(self) -> CodewordReplacer | None:
        """The layer's codeword replacement (None if disabled or without codebooks)."""
        return getattr(self.layer, "replacer", None)

    def _load_noise_state(self, state: torch.Tensor, path: Path) -> None:
        """The NSVQ noise generator lives on the run's device, and CPU and CUDA generators keep
        states of different kinds (Mersenne twister vs Philox seed + offset). A checkpoint from
        the same kind of device continues its stream exactly; one from another device starts
        a fresh stream derived from (seed, step), with a warning: the run continues, but its
        noise is no longer that of an uninterrupted run."""
        try:
            if state.numel() == self.noise_generator.get_state().numel():
                self.noise_generator.set_state(state)
                return
        except RuntimeError:
            pass
        self.noise_generator.manual_seed((self.seed + 1) * 1_000_003 + int(self.step))
        log.warning("resume: %s was written on another kind of device than %s; the NSVQ noise continues from a new "
                    "stream (seeded by seed and step), so the run is no longer bit-identical to an uninterrupted one",
                    path, self.device)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
               "noise_generator": self.noise_generator.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "config": comparable(self.cfg),
            "data": self.data_record,
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": None if self.free else self.layer.estimator.state_dict() or None,  # the estimator's state (EMA averages; None for most)
            "replacer": None if self.replacer is None else {
                "batches_used": self.replacer.batches_used, "total_replaced": self.replacer.total_replaced,
                "window": int(self.replacer.window)},
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
        if state["ema"] is not None:
            self.layer.estimator.load_state_dict(state["ema"])
        if self.replacer is not None:
            rep = state["replacer"]
            self.replacer.batches_used.copy_(rep["batches_used"])
            self.replacer.replaced.fill_(int(rep["total_replaced"]))
            # checkpoints before the window was saved: every step recorded one batch
            self.replacer.window.fill_(int(rep.get("window", int(state["step"]) % self.replacer.num_batches)))
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        self._load_noise_state(rng["noise_generator"], path)
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])
        self.untrained = state["untrained"]
        self.train_seconds = float(state["train_seconds"])


def check_resumable(state: Mapping[str, Any], cfg: Mapping[str, Any], path: Path,
                    data: Mapping[str, Any] | None = None) -> None:
    """Refuse (ConfigError) a checkpoint of other settings or other data (by checksum, when
    both name theirs), or more epochs than configured."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"resume=true: {path} has checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    diff = _first_difference(comparable(state["config"]), comparable(cfg))
    if diff:
        raise ConfigError(f"resume=true: {path} belongs to a different run ({diff})")
    if data is not None and state.get("data") is not None and not same_data(state["data"], data):
        labels = sorted(k for k in set(data) | set(state["data"])
                        if (data.get(k) or {}).get("sha256") != (state["data"].get(k) or {}).get("sha256"))
        raise ConfigError(f"resume=true: {path} was trained on other data (the checksum of {', '.join(labels)} differs)")
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
    except Exception as err:  # unreadable / truncated file: say which one, in one short line
        raise ConfigError(f"resume=true: cannot read checkpoint {path} ({_unreadable_reason(path, err)}); "
                          f"delete it to start again, or set resume=false") from None


def _unreadable_reason(path: Path, err: BaseException) -> str:
    """torch.load's errors run to many lines (pickle advice, 'file an issue'): keep the gist."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if not zipfile.is_zipfile(path):
        return "not a PyTorch checkpoint: truncated or another kind of file"
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[0] if lines else type(err).__name__)[:200]


def load_checkpoint(training: Training, path: Path) -> None:
    training.load_state_dict(read_checkpoint(path), path)
