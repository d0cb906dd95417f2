"""Run outputs: metrics.json (written atomically) and a one-row results table."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from . import atomic
from .errors import write_failed

METRICS_FILE = "metrics.json"  # a finished run's record
FAILED_FILE = "failed.json"  # a sweep job that failed: its overrides, config and error


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write strict JSON to `path` atomically: tensors and numpy scalars become plain
    numbers, and a non-finite float becomes null (``NaN``/``Infinity`` are not JSON)."""
    try:
        atomic.write_json_atomic(path, strict_json(obj), default=_jsonable)
    except OSError as err:  # disk full, read-only directory: name the file
        raise write_failed(Path(path), err) from None


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (also inside tensors/numpy values) replaced by None."""
    if isinstance(obj, Mapping):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, torch.Tensor) or (hasattr(obj, "item") and hasattr(obj, "dtype")):
        return strict_json(obj.tolist() if getattr(obj, "ndim", 0) else obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def non_finite(metrics: Mapping[str, Any]) -> list[str]:
    """Names of the metrics that are NaN or infinite."""
    bad = []
    for key, value in metrics.items():
        try:
            if not math.isfinite(float(value)):
                bad.append(key)
        except (TypeError, ValueError):
            continue
    return bad


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def environment(device: torch.device, seed: int) -> dict[str, Any]:
    import faiss
    import numpy

    import vqbench

    env = {
        "vqbench": vqbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "faiss": faiss.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "seed": seed,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        if abs(value) >= 1e3:  # 1,000..99,999: whole numbers read better than 2.085e+04
            return f"{value:.0f}"
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[Mapping[str, Any]], columns: list[str]) -> str:
    """A plain-text table with aligned columns."""
    cells = [columns] + [[format_value(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
