"""The optimizer registry: one line per optimizer, as ``QUANTIZERS`` is for quantizers.

Adding an optimizer is one module (its ``OptimizerSpec`` subclass with its ``Config``; see
spec.py) and one entry in ``BUILTIN`` below, or ``register_optimizer(spec)`` from outside the
package. Registering puts the config dataclass into the schema as ``optimizer=<name>`` (Hydra's
config group, so no YAML file is needed) and makes ``optimizer_spec(name)`` find it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common.checks import ConfigError
from ..common.options import add_option
from .kmeans_ema import KMeans
from .nsvq import NSVQ
from .spec import OptimizerSpec
from .ste import STE

BUILTIN: tuple[OptimizerSpec, ...] = (NSVQ(), STE(), KMeans())

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


def optimizer_spec(ocfg_or_name: Mapping[str, Any] | str) -> OptimizerSpec:
    """The registry entry of an ``optimizer`` config section (or of a name)."""
    name = ocfg_or_name if isinstance(ocfg_or_name, str) else ocfg_or_name["name"]
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name must be one of {list(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name]


def gradient_optimizers() -> list[str]:
    """Names of the registered optimizers that train by gradient steps."""
    return [name for name, spec in OPTIMIZERS.items() if spec.gradient]


for _spec in BUILTIN:
    register_optimizer(_spec)

__all__ = ["OPTIMIZERS", "gradient_optimizers", "optimizer_spec", "register_optimizer", "unregister_optimizer"]
