"""``vqbench-report RUNS --curves [METRIC ...]``: learning curves of finished runs, one line per
setting (the runs' configs without the seed), the mean over seeds drawn as a line and their
range (min..max) as a band; x is the training step (``--x epoch`` for VQ-VAE runs).

Every run directory holds ``curves.csv`` (vqbench.common.curves); the settings come from the
``metrics.json`` beside it, and a line's label names the settings that differ between lines.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..common.atomic import atomic_path
from ..common.curves import CURVES_FILE, read_curves

NOT_SETTINGS = ("seed", "progress", "resume", "logger", "threads", "device", "tags", "hydra")


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict):
        return {prefix[:-1]: json.dumps(config) if isinstance(config, list) else config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if f"{prefix}{key}" not in NOT_SETTINGS:
            out.update(_flat(value, f"{prefix}{key}."))
    return out


def find_curves(paths: list[Path]) -> list[tuple[dict[str, Any], list[dict[str, float]]]]:
    """(settings, rows) of every finished run (curves.csv beside metrics.json) under `paths`."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_file() and path.name == CURVES_FILE:
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob(CURVES_FILE)))
        elif not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
    runs = []
    for file in files:
        metrics = file.parent / "metrics.json"
        if not metrics.is_file():
            continue  # unfinished or failed
        config = json.loads(metrics.read_text()).get("config", {})
        runs.append((_flat(config), read_curves(file)))
    return runs


def group_runs(runs: list[tuple[dict[str, Any], list[dict[str, float]]]]) -> dict[str, list[list[dict[str, float]]]]:
    """The runs' curves by setting, keyed by a label of the settings that differ between lines."""
    by_setting: dict[str, tuple[dict[str, Any], list[list[dict[str, float]]]]] = {}
    for settings, rows in runs:
        key = json.dumps(settings, sort_keys=True, default=str)
        by_setting.setdefault(key, (settings, []))[1].append(rows)
    keys = sorted({k for settings, _ in by_setting.values() for k in settings})
    differing = [k for k in keys if len({json.dumps(s.get(k), default=str) for s, _ in by_setting.values()}) > 1]
    everywhere = [k for k in differing if all(k in s for s, _ in by_setting.values())]
    differing = everywhere or differing  # an optimizer's own keys only when nothing shared differs
    out: dict[str, list[list[dict[str, float]]]] = {}
    for settings, curves in by_setting.values():
        label = ", ".join(f"{k.split('.')[-1]}={settings.get(k)}" for k in differing) or \
            f"{settings.get('quantizer.name')} + {settings.get('optimizer.name')}"
        out.setdefault(label, []).extend(curves)
    return out


def mean_and_band(curves: list[list[dict[str, float]]], metric: str, x: str) -> tuple[np.ndarray, ...]:
    """(x, mean, min, max) of `metric` over the runs, at the x values every run logged."""
    per_run = []
    for rows in curves:
        points = defaultdict(list)
        for row in rows:
            if metric in row and x in row:
                points[row[x]].append(row[metric])
        per_run.append({k: v[0] for k, v in points.items()})
    common = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    values = np.array([[p[k] for k in common] for p in per_run]) if common else np.zeros((0, 0))
    if not common:
        return (np.array([]),) * 4
    return np.array(common), values.mean(0), values.min(0), values.max(0)


def draw_curves(paths: list[Path], metrics: list[str], out: Path, x: str = "step") -> dict[str, int]:
    """Write the curves' PNG to `out` (one panel per metric); returns how many runs and lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(find_curves(paths))
    if not groups:
        raise FileNotFoundError(f"no finished run with {CURVES_FILE} under {', '.join(map(str, paths))}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    drawn = 0
    for ax, metric in zip(axes[0], metrics):
        for label, curves in sorted(groups.items()):
            xs, mean, lo, hi = mean_and_band(curves, metric, x)
            if len(xs) == 0:
                continue
            line, = ax.plot(xs, mean, label=f"{label} ({len(curves)} run{'s' if len(curves) > 1 else ''})")
            if len(curves) > 1:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn += 1
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return {"runs": sum(len(c) for c in groups.values()), "lines": drawn}
