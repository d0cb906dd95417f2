"""The one set of validators: a bad setting becomes a ConfigError whose one line names the
setting and the value (the command prints it as ``vqbench: error: ...`` and exits with 2).
Kept free of other vqbench imports so that any module (quantizers, data) can use it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """A setting that cannot run; the message names the field and the value."""


def check_range(path: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                allow_none: bool = False, lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> None:
    """`value` (the setting at `path`) lies in [lo, hi] (open ends where asked), or is None if
    allowed; an integer if `integer`."""
    if value is None and allow_none:
        return
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{path} must be an integer{' or null' if allow_none else ''}, got {value!r}")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if ok:
        return
    if lo is not None and hi is not None:
        bound = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        if isinstance(value, int) and isinstance(lo, int) and isinstance(hi, int) and not (lo_open or hi_open):
            bound = f"in {lo}..{hi}"
    elif lo is not None:
        bound = f"> {lo}" if lo_open else f">= {lo}"
    else:
        bound = f"< {hi}" if hi_open else f"<= {hi}"
    finite = "" if not isinstance(value, float) or math.isfinite(value) else "a finite number "
    raise ConfigError(f"{path} must be {finite}{bound}{' or null' if allow_none else ''}, got {value!r}")


def check_positive(section: Mapping[str, Any], where: str, *keys: str, allow_none: bool = False) -> None:
    """Every `section[key]` is an integer >= 1 (or None if allowed)."""
    for key in keys:
        check_range(f"{where}.{key}", section[key], 1, allow_none=allow_none, integer=True)


SEED_MAX = 2**63 - 1  # torch.manual_seed takes a signed 64-bit integer


def check_seed(path: str, value: Any, allow_none: bool = False) -> None:
    """A seed: an integer in 0..2^63-1 (numpy refuses negatives, torch anything past int64)."""
    check_range(path, value, 0, SEED_MAX, allow_none=allow_none, integer=True)
