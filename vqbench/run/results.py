"""Run outputs: the names of a run's record files, the environment it ran in, non-finite metrics
and the one-row results table (the files are written by common/atomic.py's write_json_atomic)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from typing import Any

import torch

METRICS_FILE = "metrics.json"  # a finished run's record
FAILED_FILE = "failed.json"  # a sweep job that failed: its overrides, config and error


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
