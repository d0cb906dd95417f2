"""Argument and input checks of the library layers: one ValueError naming the layer, the
argument and the value, or the first bad row or code (never a torch-internal error)."""

from __future__ import annotations

import math
import operator

import torch


def check_integer(layer: str, name: str, value: object, minimum: int) -> int:
    """`value` as an int >= `minimum`, or a ValueError naming the layer's argument."""
    try:
        whole = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        whole = None
    if whole is None or isinstance(value, bool):
        raise ValueError(f"vqbench.{layer}: {name} must be an integer, got {value!r}")
    if whole < minimum:
        raise ValueError(f"vqbench.{layer}: {name} must be >= {minimum}, got {whole}")
    return whole


def check_number(layer: str, name: str, value: object, low: float, high: float = math.inf,
                 high_open: bool = False) -> float:
    """`value` as a finite float in [low, high] (or [low, high) with `high_open`), else a ValueError."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    inside = low <= number < high if high_open else low <= number <= high
    if isinstance(value, bool) or not math.isfinite(number) or not inside:
        bound = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"vqbench.{layer}: {name} must be a finite number {bound}, got {value!r}")
    return number


def check_finite(layer: str, x: torch.Tensor, what: str = "input") -> None:
    """A ValueError naming the first row of x [..., D] that holds NaN or Inf (and how many do)."""
    bad = ~torch.isfinite(x).all(dim=-1)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        count = int(bad.sum())
        raise ValueError(f"vqbench.{layer}: {what} row {list(first)} holds NaN or Inf "
                         f"({count} of {bad.numel()} rows); every value must be finite")


def check_floating(layer: str, x: torch.Tensor, what: str = "input") -> None:
    """A ValueError unless x is a floating-point tensor."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"vqbench.{layer}: the {what} must be a floating-point tensor, got {kind}")


def check_codes(layer: str, codes: torch.Tensor, sizes: torch.Tensor) -> None:
    """A ValueError unless codes [..., M] are integers with codes[..., m] in 0..sizes[m]-1."""
    if not isinstance(codes, torch.Tensor) or codes.is_floating_point() or codes.is_complex() \
            or codes.dtype == torch.bool:
        kind = codes.dtype if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"vqbench.{layer}: codes must be an integer tensor, got {kind}")
    sizes = sizes.to(codes.device)
    bad = (codes < 0) | (codes >= sizes)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        value, high = int(codes[first]), int(sizes[first[-1]]) - 1
        raise ValueError(f"vqbench.{layer}: code {value} at {list(first)} is out of range: "
                         f"codebook {first[-1]} has codes 0..{high}")
