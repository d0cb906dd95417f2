"""Config vocabulary shared by every layer: the enums of the schema and the options that
lower layers register themselves (the quantizer and optimizer registries), kept torch-free,
Hydra-free and below `vqbench.run.schema`, which assembles the whole schema from them."""

from __future__ import annotations

import sys
from enum import Enum

# OmegaConf's marker of a value that must be given ("???"), spelt here so that config dataclasses
# below the schema (quantizers, optimizers, estimators) need no omegaconf import.
MISSING = "???"


class LrSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"


class Init(str, Enum):
    random = "random"  # N(0, (0.01 sigma)^2) near the origin, sigma = the training data's std
    data = "data"  # random training vectors (VQ, PVQ) or residuals (RVQ, AVQ)
    uniform = "uniform"  # U(-1/K, 1/K) in absolute units: the NSVQ authors' codebook start


class NoiseScope(str, Enum):
    vector = "vector"  # one noise vector per latent, scaled by the whole error ||x - x_hat||
    part = "part"  # one per part the quantizer codes independently (PVQ's subspaces), scaled by that part's error


class Logger(str, Enum):
    csv = "csv"  # curves.csv only (every run writes it)
    tensorboard = "tensorboard"  # also TensorBoard events in <run dir>/tensorboard/ (optional extra)


class ToyKind(str, Enum):
    correlated = "correlated"  # N(0, S), S_ij = rho^|i-j|
    uncorrelated = "uncorrelated"  # N(0, I)
    lowrank = "lowrank"  # x = z A, z ~ N(0, I_rank): the paper's Fig. 2a source (rank 16, 64 dims)


class Search(str, Enum):
    flat = "flat"  # the decoded base scanned in chunks (exact ||q - x_hat||^2)
    faiss = "faiss"  # a faiss lookup-table index of our codebooks + codes (same distances)


# Options registered from below the schema (group -> name -> config dataclass): the quantizers'
# and the optimizers' registries declare theirs here.
REGISTERED: dict[str, dict[str, object]] = {"quantizer": {}, "optimizer": {}}


def add_option(group: str, name: str, node: object | None) -> None:
    """Add (None: remove) option `name` of `group`, a config dataclass (or an instance of one,
    for an option that presets some of its values), to the schema; the
    quantizer and optimizer registries declare their options this way. Hydra's ConfigStore gets
    it now if Hydra is loaded, else when the schema registers (``vqbench.run.schema.register``):
    the library layers import no Hydra."""
    if node is None:
        REGISTERED[group].pop(name, None)
    else:
        REGISTERED[group][name] = node
    if "hydra.core.config_store" not in sys.modules:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    if node is None:
        cs.repo.get(group, {}).pop(f"{name}.yaml", None)
    else:
        cs.store(group=group, name=name, node=node)
