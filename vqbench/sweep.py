"""The end of a multirun sweep: one summary of which jobs ran and which failed.

A failing job of a sweep does not stop the others (see `cli._hydra_main`); it leaves
`failed.json` in its directory. After the last job this Hydra callback lists the failures
and makes the command exit with status 1, so scripts notice a partial sweep.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .results import FAILED_FILE, METRICS_FILE


def sweep_status(sweep_dir: Path) -> dict[str, list[Path]]:
    """Job directories of a sweep (those holding `.hydra/`) by outcome: done, failed, incomplete."""
    status: dict[str, list[Path]] = {"done": [], "failed": [], "incomplete": []}
    for job in sorted(p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir()):
        if (job / METRICS_FILE).is_file():
            status["done"].append(job)
        elif (job / FAILED_FILE).is_file():
            status["failed"].append(job)
        else:
            status["incomplete"].append(job)
    return status


def failure_line(job: Path) -> str:
    try:
        record = json.loads((job / FAILED_FILE).read_text())
        return f"{job.name} ({' '.join(record.get('overrides', []))}): {record.get('error', '?')}"
    except (OSError, json.JSONDecodeError) as err:
        return f"{job.name}: unreadable {FAILED_FILE} ({err})"


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        status = sweep_status(sweep_dir)
        total = sum(len(v) for v in status.values())
        bad = status["failed"] + status["incomplete"]
        print(f"vqbench: sweep {sweep_dir}: {len(status['done'])} of {total} jobs finished", file=sys.stderr)
        for job in status["failed"]:
            print(f"vqbench: failed job {failure_line(job)}", file=sys.stderr)
        for job in status["incomplete"]:
            print(f"vqbench: incomplete job {job.name} (no {METRICS_FILE} or {FAILED_FILE})", file=sys.stderr)
        if bad:
            sys.exit(1)
