"""Attempts of one job: when a finished record belongs to the job asked for, and which of two
records of one job is the final one.

* **Same job.** Two recorded configs describe the same job when they are equal after dropping
  the settings that never change a result (`common.provenance.RESULT_FREE`: ``resume``,
  ``progress``, ``threads``, ``tags``, where the data lie, ...), their data files have the same
  checksums, and their code has the same ``results_version``. The configs compared are the
  resolved ones recorded in metrics.json (``config``), never directory names.
* **Finished.** A job directory holds a finished attempt of a job when its metrics.json is
  valid JSON with a ``config`` equal to the job's, the same data and results version, and
  finite ``metrics`` (`finished_record`). Records from before vqbench recorded ``code`` and
  ``data`` never count as finished.
  A sweep run with ``resume=true`` skips such jobs (cli.execute); every other job runs again.
* **Newest wins.** Of two finished records of one job (two sweep directories of one figure, a
  rerun in one directory), the one that finished last counts: `finished_at` reads the UTC time
  a run records when it writes metrics.json, or the file's modification time for records
  written before vqbench recorded it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..common.atomic import strict_json
from ..common.provenance import RESULT_FREE, RESULTS_VERSION, drop_added_defaults, drop_keys, same_data
from .results import METRICS_FILE, non_finite

SUPERSEDED_FILE = "metrics.superseded.json"  # an earlier attempt's record, kept but never read as a result


def now_utc() -> str:
    """The time a record is written, as stored in its ``finished_at`` (ISO 8601, UTC, microseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def job_config(config: Any) -> Any:
    """A recorded config as JSON would hold it, without the settings that never change a result."""
    return drop_added_defaults(drop_keys(json.loads(json.dumps(strict_json(config))), RESULT_FREE))


def job_key(config: Any) -> str:
    """A hashable form of `job_config` (equal keys = the same job)."""
    return json.dumps(job_config(config), sort_keys=True)


def finished_at(record: dict[str, Any], path: Path) -> float:
    """When the record at `path` was written: its ``finished_at`` as POSIX seconds, else the
    file's modification time."""
    stamp = record.get("finished_at")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def finished_record(run_dir: Path, config: Any, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record in ``run_dir/metrics.json`` if it is a finished run of the job `config` on the
    files `data` (provenance.data_record; None: unreadable, so nothing is finished) with today's
    results version, else None (no file, unreadable, not a run record, non-finite metrics,
    another job's config, other data, another results version)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        return None
    metrics = record.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return None
    if non_finite(metrics):  # a hand-edited or foreign file: metrics.json is written finite only
        return None
    if job_key(record["config"]) != job_key(config):
        return None
    code = record.get("code")
    if data is None or not isinstance(code, dict) or code.get("results_version") != RESULTS_VERSION:
        return None
    if not same_data(record.get("data"), data):
        return None
    return record
