"""Finding runs on disk: finished ones (metrics.json), failed sweep jobs (failed.json) and
jobs that started but never finished (a `.hydra/` directory with neither file).

One attempt per job (see attempts.py): a directory holding both files counts its newer one
(the final attempt); of several finished records of one job (the same recorded config, e.g.
two sweep directories of one figure) only the newest counts, and a failure older than a
finished record of its job is over. What was set aside is listed in `RunSet.superseded`.

A finished run is flattened to one dict: its config sections at the top level
(`quantizer.name`, `dataset.dim`, ...) beside `metrics`, `timings` and `environment`;
`lookup(run, "metrics.recall@10")` reads a dotted path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .attempts import finished_at, job_key
from .results import FAILED_FILE, METRICS_FILE


@dataclass
class RunSet:
    finished: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"path", "error", "overrides", config...}
    incomplete: list[Path] = field(default_factory=list)
    superseded: list[dict[str, Any]] = field(default_factory=list)  # older attempts of a job: {"path", "by"}
    unreadable: list[str] = field(default_factory=list)  # "<file>: not valid JSON (...)": truncated, damaged


def _read_json(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(record, dict):
        raise ValueError(f"{path}: not a vqbench record (a JSON {type(record).__name__})")
    return record


def _require(record: dict[str, Any], path: Path, *keys: str) -> dict[str, Any]:
    """`record`, or a ValueError (listed as unreadable) when a key it must hold is missing or not
    an object: a metrics.json of ``{}`` is no run, not a blank row."""
    missing = [k for k in keys if not isinstance(record.get(k), dict)]
    if missing:
        raise ValueError(f"{path}: not a vqbench record (no {' or '.join(repr(k) for k in missing)} object)")
    return record


def _flatten(record: dict[str, Any], path: Path) -> dict[str, Any]:
    flat = {**record.get("config", {}), **{k: record[k] for k in ("metrics", "timings", "environment", "code", "data") if k in record}}
    flat["path"] = str(path)
    return flat


def _finished(file: Path) -> dict[str, Any]:
    record = _require(_read_json(file), file, "config", "metrics")
    flat = _flatten(record, file.parent)
    flat["finished_at"] = finished_at(record, file)
    flat["_job"] = job_key(record.get("config", {}))
    return flat


def _failed(file: Path) -> dict[str, Any]:
    record = _require(_read_json(file), file, "config")
    flat = {**_flatten(record, file.parent), "error": record.get("error", "?"), "overrides": record.get("overrides", [])}
    flat["finished_at"] = finished_at(record, file)
    flat["_job"] = job_key(record.get("config", {}))
    return flat


def scan_runs(paths: list[Path]) -> RunSet:
    """Every run below `paths` (directories or metrics.json files), sorted by path; one attempt
    per job (the module docstring says which)."""
    finished: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    incomplete: list[Path] = []
    unreadable: list[str] = []

    def read(reader, f: Path, into: list[dict[str, Any]]) -> None:
        try:
            into.append(reader(f))
        except (ValueError, OSError) as err:  # listed, and the other runs still count
            unreadable.append(str(err) if isinstance(err, ValueError) else f"{f}: cannot read ({err})")

    for p in paths:
        if p.is_file():
            read(_finished, p, finished)
            continue
        if not p.is_dir():
            raise FileNotFoundError(f"no such run directory or metrics file: {p}")
        for f in sorted(p.rglob(METRICS_FILE)):
            read(_finished, f, finished)
        for f in sorted(p.rglob(FAILED_FILE)):
            read(_failed, f, failed)
        for h in sorted(p.rglob(".hydra")):
            job = h.parent
            if h.is_dir() and not (job / METRICS_FILE).exists() and not (job / FAILED_FILE).exists():
                incomplete.append(job)
    out = _one_attempt_per_job(finished, failed, incomplete)
    out.unreadable = unreadable
    return out


def _one_attempt_per_job(finished: list[dict[str, Any]], failed: list[dict[str, Any]],
                         incomplete: list[Path]) -> RunSet:
    out = RunSet(incomplete=incomplete)
    # A directory rerun: its newer outcome is the final attempt (a tie goes to the finished run).
    failed_in = {f["path"]: f for f in failed}
    finished_in = {r["path"]: r for r in finished}
    set_aside: dict[int, str] = {}  # id(record) -> path of the record that supersedes it
    for path, r in finished_in.items():
        f = failed_in.get(path)
        if f is not None:
            older = r if f["finished_at"] > r["finished_at"] else f
            set_aside[id(older)] = path
    # One job in several directories: the newest finished record counts.
    newest: dict[str, dict[str, Any]] = {}
    for r in finished:
        if id(r) in set_aside:
            continue
        best = newest.get(r["_job"])
        if best is None or (r["finished_at"], r["path"]) > (best["finished_at"], best["path"]):
            newest[r["_job"]] = r
    for r in finished:
        winner = newest.get(r["_job"])
        if id(r) not in set_aside and winner is not r:
            set_aside[id(r)] = winner["path"]
    for f in failed:
        winner = newest.get(f["_job"])
        if id(f) not in set_aside and winner is not None and winner["finished_at"] >= f["finished_at"]:
            set_aside[id(f)] = winner["path"]
    for records, kept in ((finished, out.finished), (failed, out.failed)):
        for r in records:
            del r["_job"]
            if id(r) in set_aside:
                out.superseded.append({"path": r["path"], "by": set_aside[id(r)],
                                       "kind": "failed" if "error" in r else "finished"})
            else:
                kept.append(r)
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
