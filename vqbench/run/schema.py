"""The config schema: every key vqbench reads, with its type and default, declared once.

Each group option is a dataclass registered in Hydra's ConfigStore (``quantizer=avq`` selects
``AVQConfig``); the YAML files in ``conf/`` only select options and override values
(``config.yaml`` and the experiment presets). Hydra/OmegaConf check every value against its
type while composing, so ``quantizer.bits_per_codebook=abc`` or an unknown key stops before
any work; the checks types cannot express (ranges, combinations) are in ``config.py``.

User keys: anything under ``tags`` (``+tags.note=baseline``) is recorded, never read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .. import quantizers  # noqa: F401  (its registry adds the quantizer options to the schema)
from ..common.options import REGISTERED, Init, Logger, LrSchedule, Search, ToyKind, add_option  # noqa: F401 (re-exported)


class Device(str, Enum):
    auto = "auto"  # CUDA if available, else CPU
    cpu = "cpu"
    cuda = "cuda"


# ---------------------------------------------------------------------------- optimizer
# Each optimizer declares its own section (``Config`` in its module under vqbench/training/, e.g.
# nsvq.py's NSVQConfig) and vqbench.training's registry adds it here with ``add_option``: the
# schema stays free of torch, and a new optimizer needs no line in this file.


# ---------------------------------------------------------------------------- dataset
@dataclass
class ToyDataset:
    name: str = "toy"
    kind: ToyKind = ToyKind.correlated
    dim: int = 64
    rho: float = 0.9  # correlation of neighbouring dimensions (correlated only)
    rank: int = 16  # lowrank only: dimension of the latent z
    mixing_seed: int = 0  # lowrank only: seed of the fixed matrix A (the source), not the run's seed
    num_train: int = 32768
    num_test: int = 16384
    # Gradient optimizers: draw every batch fresh from the source (the authors' protocol, an
    # unlimited training set) instead of resampling the num_train vectors, which then only seed
    # the codebooks and the learning-rate scale. k-means always fits the fixed num_train set.
    fresh_batches: bool = False


@dataclass
class SIFT1MDataset:
    """TEXMEX layout: {prefix}_base / _learn / _query (.fvecs or .bvecs) + {prefix}_groundtruth.ivecs."""

    name: str = "sift1m"
    root: Optional[str] = None  # null: $VQBENCH_DATA/sift1m, else ~/.cache/vqbench/sift1m
    prefix: str = "sift"
    max_base: Optional[int] = None  # first N base vectors (ground truth then recomputed exactly)
    max_queries: Optional[int] = None  # first N queries
    max_train: Optional[int] = None  # first N learn vectors


@dataclass
class SIFT1MHDF5Dataset:
    """ann-benchmarks' sift-128-euclidean.hdf5 (train = base, test = queries, neighbors)."""

    name: str = "sift1m_hdf5"
    root: Optional[str] = None  # directory holding `file`; null: $VQBENCH_DATA/sift1m_hdf5 or the cache
    file: str = "sift-128-euclidean.hdf5"
    train_size: int = 100000  # training sample drawn from the base (no learn split)
    seed: Optional[int] = None  # null: the run's seed
    max_base: Optional[int] = None
    max_queries: Optional[int] = None
    max_train: Optional[int] = None  # cap on the training sample


@dataclass
class CIFAR10Dataset:
    """CIFAR-10 from the official python archive (torchvision)."""

    name: str = "cifar10"
    root: Optional[str] = None  # directory holding cifar-10-batches-py/ (null: <cache_dir>/cifar10)
    download: bool = True  # fetch the md5-checked archive when root has no copy
    max_train: Optional[int] = None  # seeded random subset (null: all 50,000)
    max_test: Optional[int] = None  # seeded random subset (null: all 10,000)
    cache_dir: Optional[str] = None  # null: $VQBENCH_DATA, else ~/.cache/vqbench
    genuine_test: Optional[str] = None  # .npz of test images with original pixels, scored beside the test split


@dataclass
class ImageFolderDataset:
    """train/<class>/* and test/<class>/* images, or a .tar.gz of such a tree."""

    name: str = "image_folder"
    root: Optional[str] = None  # directory or .tar.gz
    max_train: Optional[int] = None
    max_test: Optional[int] = None
    cache_dir: Optional[str] = None
    genuine_test: Optional[str] = None  # .npz of test images with original pixels (data/cifar.py), scored beside test/


# ---------------------------------------------------------------------------- experiment
@dataclass
class ToyExperiment:
    name: str = "toy"


@dataclass
class ANNExperiment:
    name: str = "ann"
    baselines: List[str] = field(default_factory=list)  # faiss anchors: pq, opq, rq, rq_beam, lsq
    baselines_only: bool = False  # run only the baselines
    search_k: int = 1000  # results per query (the largest recall@T)
    chunk_size: int = 131072  # base vectors per encode / decode / search chunk
    search: Search = Search.flat  # flat: the decoded base scanned in chunks | faiss: lookup-table index of our codebooks + codes
    save_index: bool = False  # write the trained quantizer + encoded base as <run dir>/index.faiss (faiss.read_index)
    rq_beam_width: Optional[int] = None  # faiss RQ beam for rq_beam (null: quantizer.beam_width)
    lsq_encode_ils_iters: Optional[int] = None  # faiss LSQ encoding iterations (null: faiss's 16)


@dataclass
class VQVAEModel:
    latent_dim: int = 64  # dimension of each quantized latent vector
    hidden_channels: int = 128
    res_channels: int = 32  # bottleneck width inside each residual block
    res_blocks: int = 2
    downsamples: int = 2  # stride-2 stages: 32x32 images -> 8x8 latent grid


@dataclass
class VQVAEExperiment:
    name: str = "vqvae"
    epochs: int = 30
    eval_batch_size: int = 500  # test images per evaluation batch
    eval_every: int = 1  # evaluate the test split every N epochs (0: after the last only; the last always)
    eval_untrained: bool = True  # also report the test PSNR/SSIM before training
    grid_images: int = 32  # test images in reconstructions.png
    model: VQVAEModel = field(default_factory=VQVAEModel)


# ---------------------------------------------------------------------------- top level
@dataclass
class PaperConfig:
    """Set by the paper's figure presets; recorded in every run's config."""

    figure: Optional[str] = None
    mode: Optional[str] = None
    # Adam steps of the NSVQ methods in the SIFT figures' sweeps (conf/ann_method/*_nsvq.yaml read it:
    # one sweep there mixes NSVQ and k-means, so the step count cannot sit under `optimizer`).
    sift_steps: int = 2000


@dataclass
class VQBenchConfig:
    seed: int = 0  # seeds data, initialisation, batches and NSVQ noise
    device: Device = Device.auto
    progress: bool = True  # progress bars on long phases
    logger: Logger = Logger.csv  # learning curves: curves.csv always; tensorboard: also TensorBoard events
    resume: bool = False  # continue a stopped run from its last checkpoint (vqvae)
    threads: Optional[int] = None  # torch/faiss/numba threads; null: physical cores <= 4 less the machine's load (vqbench.common.threads)
    paper: PaperConfig = field(default_factory=PaperConfig)
    tags: Dict[str, Any] = field(default_factory=dict)  # free-form user keys (+tags.note=baseline)
    experiment: Any = MISSING
    dataset: Any = MISSING
    quantizer: Any = MISSING
    optimizer: Any = MISSING


GROUP_OPTIONS: dict[str, dict[str, type]] = {
    "quantizer": REGISTERED["quantizer"],  # filled by vqbench.quantizers' registry (add_option)
    "optimizer": REGISTERED["optimizer"],  # filled by vqbench.training.registry (add_option)
    "dataset": {
        "toy": ToyDataset,
        "sift1m": SIFT1MDataset,
        "sift1m_hdf5": SIFT1MHDF5Dataset,
        "cifar10": CIFAR10Dataset,
        "image_folder": ImageFolderDataset,
    },
}
# Experiments are YAML presets (conf/experiment/*.yaml) that also pick the dataset and override
# quantizer/optimizer values; their own section comes from these schemas.
EXPERIMENT_SCHEMAS: dict[str, type] = {"toy": ToyExperiment, "ann": ANNExperiment, "vqvae": VQVAEExperiment}
ROOT_SCHEMA = "vqbench_schema"
FREE_FORM = ("tags",)


def register() -> None:
    """Put the schema into Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name=ROOT_SCHEMA, node=VQBenchConfig)
    for group, options in GROUP_OPTIONS.items():
        for name, node in options.items():
            cs.store(group=group, name=name, node=node)
    for name, node in EXPERIMENT_SCHEMAS.items():
        cs.store(group="schema/experiment", name=name, node=node)


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Keys of a composed config that its schema does not declare.

    Types and most unknown keys are refused by Hydra while composing; ``+key=value`` can still
    add keys to a typed section, which this finds (``tags`` takes any key)."""
    out: list[str] = []
    declared = None
    kind = OmegaConf.get_type(cfg)
    if kind is not None and dataclasses.is_dataclass(kind):
        declared = {f.name for f in dataclasses.fields(kind)}
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if declared is not None and key not in declared:
            out.append(path)
            continue
        if path in FREE_FORM:
            continue
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            out.extend(unknown_keys(child, path + "."))
    return out


def option_defaults(group: str, name: str, **overrides: Any) -> dict[str, Any]:
    """The plain default section of option `name` of `group` (e.g. ``optimizer``, ``nsvq``),
    with `overrides` merged in (typed: a wrong type or unknown key raises). Optimizer options
    exist once vqbench.training is imported (its registry adds them)."""
    if name not in GROUP_OPTIONS[group]:
        raise KeyError(f"no {group} option {name!r} in the schema (known: {sorted(GROUP_OPTIONS[group])}; "
                       f"optimizers register when vqbench.training is imported)")
    node = OmegaConf.structured(GROUP_OPTIONS[group][name])
    return to_plain(OmegaConf.merge(node, overrides))


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python (enums as their names), as recorded in metrics.json."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


__all__ = ["EXPERIMENT_SCHEMAS", "GROUP_OPTIONS", "VQBenchConfig", "add_option", "option_defaults", "register", "to_plain",
           "unknown_keys"]
