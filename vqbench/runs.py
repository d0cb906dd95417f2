"""Finding runs on disk: finished ones (metrics.json), failed sweep jobs (failed.json) and
jobs that started but never finished (a `.hydra/` directory with neither file).

A finished run is flattened to one dict: its config sections at the top level
(`quantizer.name`, `dataset.dim`, ...) beside `metrics`, `timings` and `environment`;
`lookup(run, "metrics.recall@10")` reads a dotted path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import FAILED_FILE, METRICS_FILE


@dataclass
class RunSet:
    finished: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"path", "error", "overrides", config...}
    incomplete: list[Path] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "<file>: not valid JSON (...)": truncated, damaged


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def _flatten(record: dict[str, Any], path: Path) -> dict[str, Any]:
    flat = {**record.get("config", {}), **{k: record[k] for k in ("metrics", "timings", "environment") if k in record}}
    flat["path"] = str(path)
    return flat


def scan_runs(paths: list[Path]) -> RunSet:
    """Every run below `paths` (directories or metrics.json files), sorted by path."""
    out = RunSet()

    def read(f: Path) -> dict[str, Any] | None:
        try:
            record = _read_json(f)
        except (ValueError, OSError) as err:  # listed, and the other runs still count
            out.unreadable.append(str(err) if isinstance(err, ValueError) else f"{f}: cannot read ({err})")
            return None
        if not isinstance(record, dict):
            out.unreadable.append(f"{f}: not a vqbench record (a JSON {type(record).__name__})")
            return None
        return record

    for p in paths:
        if p.is_file():
            if (record := read(p)) is not None:
                out.finished.append(_flatten(record, p.parent))
            continue
        if not p.is_dir():
            raise FileNotFoundError(f"no such run directory or metrics file: {p}")
        for f in sorted(p.rglob(METRICS_FILE)):
            if (record := read(f)) is not None:
                out.finished.append(_flatten(record, f.parent))
        for f in sorted(p.rglob(FAILED_FILE)):
            if (record := read(f)) is None:
                continue
            out.failed.append({**_flatten(record, f.parent), "error": record.get("error", "?"),
                               "overrides": record.get("overrides", [])})
        for h in sorted(p.rglob(".hydra")):
            job = h.parent
            if h.is_dir() and not (job / METRICS_FILE).exists() and not (job / FAILED_FILE).exists():
                out.incomplete.append(job)
    return out


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """The finished runs below `paths`."""
    return scan_runs(paths).finished


def lookup(record: dict[str, Any], dotted: str) -> Any:
    """Value at a dotted path; keys may themselves contain dots (``metrics.baseline.pq.recall@10``)."""
    node: Any = record
    parts = dotted.split(".")
    while parts:
        if not isinstance(node, dict):
            return None
        for cut in range(len(parts), 0, -1):  # longest key first
            key = ".".join(parts[:cut])
            if key in node:
                node, parts = node[key], parts[cut:]
                break
        else:
            return None
    return node
