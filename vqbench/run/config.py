"""Checks of a composed config that types cannot express, each a one-line ConfigError.

Types, option names and unknown keys are checked by Hydra/OmegaConf against vqbench.run.schema
while composing (``composition_error_line`` turns their errors into the same one line);
what remains is here: ranges, combinations and the device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from ..common.checks import ConfigError, check_positive, check_range, check_seed
from ..common.curves import check_logger
from ..quantizers import quantizer_class
from ..training import optimizer_spec
from .schema import unknown_keys


def check_schema(cfg: DictConfig) -> None:
    """Keys that `+key=value` added outside the schema (and outside `tags`)."""
    extra = unknown_keys(cfg)
    if extra:
        raise ConfigError(f"unknown option '{extra[0]}' (user keys go under tags, e.g. +tags.{extra[0].split('.')[-1]}=...)")


def composition_error_line(err: BaseException) -> str:
    """One line for an error Hydra/OmegaConf raised while composing: the key and what is wrong."""
    chain = [err, err.__cause__, err.__context__]
    cause = next((e for e in chain if isinstance(e, OmegaConfBaseException) and getattr(e, "full_key", None)), None)
    text = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    where = ""
    if text and text[0].startswith("In '") and "': " in text[0]:  # a config file's error: name the file
        where = f" (in {text[0][4:text[0].index(chr(39) + ': ')]})"
    if cause is not None:
        key, msg, kind = cause.full_key, (cause.msg or str(cause)).splitlines()[0], getattr(cause, "object_type", None)
        unknown = isinstance(cause, (ConfigKeyError, ConfigAttributeError))
    else:  # only the text survived (errors inside a config file): "<msg>" then "full_key: <key>"
        keys = [i for i, ln in enumerate(text) if ln.startswith("full_key:")]
        if not keys or keys[0] == 0:
            first = (text[0] if text else type(err).__name__).removeprefix("In 'config': ")
            options = getattr(err, "options", None)
            return first + (f" (options: {', '.join(sorted(options))})" if options else "")
        key, msg, kind = text[keys[0]].split(":", 1)[1].strip(), text[keys[0] - 1], None
        unknown = msg.startswith("Key '") and " not in " in msg
    if unknown:
        known = ""
        if kind is not None and dataclasses.is_dataclass(kind):
            known = f" (known: {', '.join(f.name for f in dataclasses.fields(kind))})"
        return f"unknown option '{key}'{known}{where}"
    return f"{key}: {msg}{where}"


# ---------------------------------------------------------------------------- sections
def check_quantizer(cfg: Mapping[str, Any]) -> None:
    quantizer_class(cfg["quantizer"]).check_config(cfg["quantizer"])


def check_optimizer(cfg: Mapping[str, Any]) -> None:
    """The optimizer's own checks (its registry entry's ``check_config``)."""
    optimizer_spec(cfg["optimizer"]).check_config(cfg["optimizer"])


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available (use device=auto or device=cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)




def validate(cfg: Mapping[str, Any]) -> torch.device:
    """All experiment-independent checks of a plain (resolved) config; returns the device."""
    check_seed("seed", cfg["seed"])
    check_logger(cfg.get("logger", "csv"))
    check_range("threads", cfg.get("threads"), 1, 1024, allow_none=True, integer=True)
    # before the optimizer: conf/ann_method/*_nsvq.yaml set optimizer.steps=${paper.sift_steps}
    if cfg.get("paper"):  # a composed config always has it; a hand-made one may leave it out
        check_positive(cfg["paper"], "paper", "sift_steps")
    check_quantizer(cfg)
    check_optimizer(cfg)
    return resolve_device(cfg["device"])
