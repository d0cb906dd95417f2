"""The registries: ``ESTIMATORS`` (gradient estimators, used by the layers, the VQ-VAE and
gradient training) and ``OPTIMIZERS`` (what ``optimizer=<name>`` selects: one gradient optimizer
per estimator, plus the classical ``kmeans``).

Adding an estimator is one module with its ``Estimator`` subclass (estimator.py) and one entry in
``BUILTIN_ESTIMATORS`` below, or ``register_estimator(cls)`` from outside the package: it then is a
layer option (``vqbench.RVQ(..., estimator=name)``) and an optimizer of every experiment
(``optimizer=name``; its ``Config`` enters the schema, no YAML file needed).
``register_optimizer(spec)`` adds an optimizer that is not an estimator (as ``kmeans``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common.checks import ConfigError
from ..common.options import add_option
from .diveq import DiVeQ, SFDiVeQ
from .ema import EMA
from .estimator import Estimator
from .gradient import GradientOptimizer
from .gumbel import Gumbel
from .kmeans_ema import KMeans
from .nsvq import NSVQ
from .rotation import Rotation
from .spec import OptimizerSpec
from .ste import STE

BUILTIN_ESTIMATORS: tuple[type[Estimator], ...] = (NSVQ, STE, Rotation, DiVeQ, SFDiVeQ, Gumbel, EMA)

ESTIMATORS: dict[str, type[Estimator]] = {}
OPTIMIZERS: dict[str, OptimizerSpec] = {}


def register_optimizer(spec: OptimizerSpec) -> OptimizerSpec:
    """Make `spec` selectable as ``optimizer=<spec.name>`` everywhere (CLI, sweeps, experiments)."""
    OPTIMIZERS[spec.name] = spec
    add_option("optimizer", spec.name, spec.Config)
    return spec


def unregister_optimizer(name: str) -> None:
    """Undo ``register_optimizer`` (tests that register their own optimizer)."""
    OPTIMIZERS.pop(name, None)
    add_option("optimizer", name, None)


def register_estimator(cls: type[Estimator]) -> type[Estimator]:
    """Make estimator `cls` a layer option (``estimator=cls.name``) and an optimizer of every
    experiment (``optimizer=cls.name``, gradient training with it); usable as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise TypeError(f"register_estimator takes an Estimator subclass, got {cls!r}")
    ESTIMATORS[cls.name] = cls
    register_optimizer(GradientOptimizer(cls))
    return cls


def unregister_estimator(name: str) -> None:
    """Undo ``register_estimator``."""
    ESTIMATORS.pop(name, None)
    unregister_optimizer(name)


def estimator_class(name: str) -> type[Estimator]:
    """The registered estimator `name` (ValueError naming the known ones otherwise)."""
    if name not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {list(ESTIMATORS)}, got {name!r}")
    return ESTIMATORS[name]


def optimizer_spec(ocfg_or_name: Mapping[str, Any] | str) -> OptimizerSpec:
    """The registry entry of an ``optimizer`` config section (or of a name)."""
    name = ocfg_or_name if isinstance(ocfg_or_name, str) else ocfg_or_name["name"]
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name must be one of {list(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name]


def gradient_optimizers() -> list[str]:
    """Names of the registered optimizers that train by gradient steps."""
    return [name for name, spec in OPTIMIZERS.items() if spec.gradient]


for _cls in BUILTIN_ESTIMATORS:
    register_estimator(_cls)
register_optimizer(KMeans())

__all__ = ["ESTIMATORS", "OPTIMIZERS", "estimator_class", "gradient_optimizers", "optimizer_spec", "register_estimator",
           "register_optimizer", "unregister_estimator", "unregister_optimizer"]
