"""VQ-VAE experiment: train an image autoencoder with the configured quantizer as its bottleneck
and report reconstruction quality on the test images.

    vqbench experiment=vqvae quantizer=avq optimizer=nsvq quantizer.bits_per_codebook=6

* Bottleneck training: the optimizer's own bottleneck (vqbench.training): nsvq (noise
  substitution), ste (codebook + beta * commitment loss) or kmeans = EMA codebook updates with
  a straight-through encoder.
* Loss: pixel MSE divided by the training images' variance (as in the sonnet VQ-VAE
  example) plus the bottleneck's auxiliary loss; Adam over encoder, decoder and (unless the
  bottleneck moves them itself, as EMA does) the codebooks; dead codewords are replaced as in the foundation's gradient training.
* Every epoch: a pass over the shuffled training images, an evaluation on the test images,
  and an atomic checkpoint (model, optimizer, schedule, EMA and replacement state, RNG
  states, epoch, history). ``resume=true`` continues from ``<run dir>/checkpoint.pt`` and
  ends with exactly the parameters of an uninterrupted run (same seed, same device).
  ``resume=true experiment.epochs=N`` extends a run (a finished one too) to N epochs; the
  learning-rate schedule is then recomputed for the new total (cosine rises again).
* Metrics: test PSNR (dB, per-image mean, images in [0, 1]), SSIM (and ``ssim_legacy``, the
  scikit-image < 0.20 convention), MSE; the same with a ``_genuine`` suffix on
  ``dataset.genuine_test`` (test images with their original pixels) when it is set; per-codebook
  perplexity and usage, bits per latent vector and per image, encoding complexity per
  latent vector; ``reconstructions.png`` shows test originals above their reconstructions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..common.atomic import write_json_atomic
from ..common.checks import ConfigError, check_positive, check_range
from ..common.memory import ADAM_COPIES, F32, refuse_if_too_big
from ..common.provenance import data_record
from ..data.cifar import ImageSplits, image_files, load_images
from ..data.download import DownloadError
from ..metrics.complexity import encode_ops
from ..metrics.images import psnr_of_mean_mse
from ..models.vqvae import MAX_DOWNSAMPLES, Decoder, Encoder, check_image_shape
from ..quantizers import check_quantizer_fits, quantizer_terms
from .complexity import complexity_metrics
from .curves import write_epoch_curves
from .vqvae_eval import evaluate, grid_indices, save_grid, to_unit  # noqa: F401 (to_unit: API)
from .vqvae_state import Training, check_resumable, load_checkpoint, read_checkpoint, save_checkpoint  # noqa: F401

log = logging.getLogger(__name__)
DATASETS = ("cifar10", "image_folder")
CHECKPOINT = "checkpoint.pt"
GRID = "reconstructions.png"
HISTORY = "history.json"


def validate(cfg: Mapping[str, Any]) -> None:
    d, e = cfg["dataset"], cfg["experiment"]
    if d["name"] not in DATASETS:
        raise ConfigError(f"experiment=vqvae needs dataset=cifar10 or dataset=image_folder, got dataset={d['name']!r}")
    check_positive(d, "dataset", "max_train", "max_test", allow_none=True)
    check_positive(e, "experiment", "epochs", "eval_batch_size", "grid_images")
    check_range("experiment.eval_every", e.get("eval_every", 1), 0, integer=True)
    m = e["model"]
    check_positive(m, "experiment.model", "latent_dim", "hidden_channels", "res_channels", "downsamples")
    check_range("experiment.model.downsamples", m["downsamples"], 1, MAX_DOWNSAMPLES)
    if d["name"] == "cifar10":  # 32x32: known before any data is read
        _check_shape(m, 32, 32, "dataset=cifar10")
    check_range("experiment.model.res_blocks", m["res_blocks"], 0)
    check_quantizer_fits(cfg, int(m["latent_dim"]), "experiment.model.latent_dim")
    refuse_if_too_big(estimate_memory(cfg))


# CIFAR-10's splits: the most images a run decodes for each (an image folder is counted the same)
SPLIT_IMAGES = {"max_train": 50_000, "max_test": 10_000}


def held_images(d: Mapping[str, Any]) -> int:
    """Images the run holds decoded: each split's cap (dataset.max_train, max_test; null: the
    whole split), CIFAR-10's 60,000 at most."""
    held = sum(n if d.get(key) is None else int(d[key]) for key, n in SPLIT_IMAGES.items())
    return min(held, sum(SPLIT_IMAGES.values()))


def estimate_memory(cfg: Mapping[str, Any], height: int = 32, width: int = 32) -> dict[str, float]:
    """The run's large allocations (bytes) by the setting that drives each (vqbench.common.memory):
    the network's weights with Adam's copies (counted exactly on the meta device, nothing
    allocated), the activations of a training batch kept for the backward pass (for
    height x width images), the quantizer, and the decoded images (CIFAR-10's 60,000 at most)."""
    m, o, e, d = cfg["experiment"]["model"], cfg["optimizer"], cfg["experiment"], cfg["dataset"]
    h, r, blocks, down = (int(m[k]) for k in ("hidden_channels", "res_channels", "res_blocks", "downsamples"))
    latent = int(m["latent_dim"])
    with torch.device("meta"):
        weights = sum(p.numel() for net in (Encoder(3, h, r, blocks, down, latent), Decoder(3, h, r, blocks, down, latent))
                      for p in net.parameters())
    pixels = height * width
    per_image = (h * pixels / 4 * (2 * blocks + 2 * down + 4) * 2 + 3 * pixels * 4) * F32  # encoder + decoder
    batch, eval_batch = int(o["batch_size"]), int(e["eval_batch_size"])
    images = held_images(d)
    grid = max(1, height >> down) * max(1, width >> down)
    def driver(key: str, n: int, default: int) -> str:  # activations grow with both: name the larger
        return f"{key}={n}" if n / default >= h / 128 else f"experiment.model.hidden_channels={h}"

    terms: dict[str, float] = {f"experiment.model.hidden_channels={h}": float(weights) * F32 * ADAM_COPIES}
    for key, nbytes in ((driver("optimizer.batch_size", batch, 128), float(batch) * per_image),
                        (driver("experiment.eval_batch_size", eval_batch, 500), float(eval_batch) * per_image / 2),
                        (f"dataset.max_train={d.get('max_train')}", float(images) * 3 * pixels * F32)):
        terms[key] = terms.get(key, 0.0) + nbytes
    for k, nbytes in quantizer_terms(cfg["quantizer"], latent, batch * grid).items():
        terms[k] = terms.get(k, 0.0) + nbytes
    return terms


def _check_shape(model: Mapping[str, Any], height: int, width: int, source: str) -> None:
    try:
        check_image_shape(int(model["downsamples"]), int(height), int(width), source)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def data_files(cfg: Mapping[str, Any]) -> dict[str, Path]:
    """The files this run reads (their checksums go into its record)."""
    return image_files(cfg["dataset"])


def run(cfg: Mapping[str, Any], run_dir: Path, device: torch.device) -> dict[str, Any]:
    e = cfg["experiment"]
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = bool(cfg["progress"])
    timings: dict[str, float] = {}
    ckpt = run_dir / CHECKPOINT
    data, training = _start(cfg, ckpt, device, progress, timings)

    eval_batch = int(e["eval_batch_size"])
    timings["eval"] = 0.0
    if e["eval_untrained"] and training.untrained is None:
        t0 = time.perf_counter()
        training.untrained = evaluate(training.model, data.test, eval_batch, device, progress)
        timings["eval"] += time.perf_counter() - t0

    timings["train"] = 0.0
    while training.epoch < training.epochs:
        _epoch(cfg, training, data, run_dir, device, progress, timings)

    genuine = None
    if data.genuine is not None:
        t0 = time.perf_counter()
        genuine = evaluate(training.model, data.genuine, eval_batch, device, progress)
        timings["eval_genuine"] = time.perf_counter() - t0
        log.info("genuine test images (%d, dataset.genuine_test): PSNR %.2f dB, SSIM %.4f, legacy SSIM %.4f",
                 data.genuine.shape[0], genuine["psnr"], genuine["ssim"], genuine["ssim_legacy"])

    t0 = time.perf_counter()
    save_grid(training.model, data.test[grid_indices(data.test.shape[0], int(e["grid_images"]))], run_dir / GRID, device)
    timings["grid"] = time.perf_counter() - t0
    return {"metrics": final_metrics(training, data, genuine), "timings": timings}


def _start(cfg: Mapping[str, Any], ckpt: Path, device: torch.device, progress: bool,
           timings: dict[str, float]) -> tuple[ImageSplits, Training]:
    """The images (timed as ``data``) and the training state (``setup``): fresh, or resumed from
    ``ckpt`` with resume=true (a checkpoint of another config is refused before any decoding)."""
    state = None
    data_sums = _data_sums(cfg)
    if cfg["resume"] and ckpt.is_file():  # refuse a mismatch before decoding any data
        state = read_checkpoint(ckpt)
        check_resumable(state, cfg, ckpt, data_sums)

    t0 = time.perf_counter()
    try:
        data = load_images(cfg["dataset"], int(cfg["seed"]), progress)
    except DownloadError as err:
        raise ConfigError(str(err)) from None
    timings["data"] = time.perf_counter() - t0
    for images in (data.train, data.test):  # before training: the network must give back their shape
        _check_shape(cfg["experiment"]["model"], *images.shape[-2:], f"dataset={cfg['dataset']['name']} "
                     f"(dataset.root={cfg['dataset'].get('root')})")

    t0 = time.perf_counter()
    training = Training(cfg, data, device)
    training.data_record = data_sums
    if state is not None:
        training.load_state_dict(state, ckpt)
        log.info("vqbench: resumed %s after epoch %d/%d", ckpt, training.epoch, training.epochs)
    elif cfg["resume"]:
        log.info("vqbench: resume=true but %s does not exist; starting from scratch", ckpt)
    timings["setup"] = time.perf_counter() - t0
    return data, training


def _epoch(cfg: Mapping[str, Any], training: Training, data: ImageSplits, run_dir: Path, device: torch.device,
           progress: bool, timings: dict[str, float]) -> None:
    """One training epoch and, every ``experiment.eval_every`` epochs and after the last, its test
    evaluation (added to ``train`` and ``eval`` in timings), recorded in the history, the
    checkpoint and the curves."""
    t0 = time.perf_counter()
    stats = training.train_epoch(data.train, progress)
    train_time = time.perf_counter() - t0
    training.train_seconds += train_time
    timings["train"] += train_time
    test: dict[str, float] = {}
    if _evaluates_after(training.epoch + 1, training.epochs, int(cfg["experiment"].get("eval_every", 1))):
        t0 = time.perf_counter()
        test = evaluate(training.model, data.test, int(cfg["experiment"]["eval_batch_size"]), device, progress)
        timings["eval"] += time.perf_counter() - t0
    training.epoch += 1
    training.history.append({"epoch": training.epoch, **stats, **{f"test_{k}": v for k, v in test.items()},
                             "train_seconds": train_time})
    save_checkpoint(training, run_dir / CHECKPOINT)
    write_json_atomic(run_dir / HISTORY, training.history)
    write_epoch_curves(run_dir, cfg.get("logger", "csv"), training.history, training.steps_per_epoch)
    if test:
        log.info("epoch %d/%d: train loss %.4f, test PSNR %.2f dB, SSIM %.4f, %.0f s", training.epoch,
                 training.epochs, stats["train_loss"], test["psnr"], test["ssim"], train_time)
    else:
        log.info("epoch %d/%d: train loss %.4f, %.0f s (no test evaluation: experiment.eval_every)", training.epoch,
                 training.epochs, stats["train_loss"], train_time)


def _evaluates_after(epoch: int, epochs: int, every: int) -> bool:
    """Whether the test split is evaluated after ``epoch`` (1-based) of ``epochs``: always after
    the last, and every ``every`` epochs (0: the last only)."""
    return epoch >= epochs or (every > 0 and epoch % every == 0)


def _data_sums(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data's checksums, or None while a file is missing (e.g. CIFAR-10 not downloaded yet)."""
    try:
        return data_record(data_files(cfg))
    except OSError:
        return None


def final_metrics(training: Training, data: ImageSplits, genuine: Mapping[str, float] | None = None) -> dict[str, float]:
    q = training.quantizer
    last = training.history[-1]
    positions = training.model.latent_grid(data.test.shape[-1]) * training.model.latent_grid(data.test.shape[-2])
    metrics = {
        "bits": float(q.bits),
        "psnr": last["test_psnr"],
        "ssim": last["test_ssim"],
        "mse": last["test_mse"],
        "psnr_pooled": psnr_of_mean_mse(last["test_mse"]),  # the test set's pooled MSE in dB
    }
    if "test_ssim_legacy" in last:  # absent from the history of a checkpoint written before it existed
        metrics["ssim_legacy"] = last["test_ssim_legacy"]
    if genuine is not None:
        metrics.update({f"{k}_genuine": genuine[k] for k in ("psnr", "ssim", "ssim_legacy", "mse")})
        metrics["psnr_pooled_genuine"] = psnr_of_mean_mse(genuine["mse"])
        metrics["genuine_images"] = float(data.genuine.shape[0])
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
