"""The end of a multirun sweep: one summary of which jobs ran and which failed.

A failing job of a sweep does not stop the others (see `cli._hydra_main`); it leaves
`failed.json` in its directory. After the last job this Hydra callback lists the failures
and makes the command exit with status 1, so scripts notice a partial sweep.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .results import FAILED_FILE, METRICS_FILE
from .runs import scan_runs


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            runs = scan_runs([sweep_dir])  # the same reading of run directories as vqbench-report
        except (OSError, ValueError) as err:
            print(f"vqbench: sweep {sweep_dir}: cannot read its runs ({err})", file=sys.stderr)
            sys.exit(1)
        total = len(runs.finished) + len(runs.failed) + len(runs.incomplete)
        print(f"vqbench: sweep {sweep_dir}: {len(runs.finished)} of {total} jobs finished", file=sys.stderr)
        for f in runs.failed:
            print(f"vqbench: failed job {Path(f['path']).name} ({' '.join(f['overrides'])}): {f['error']}",
                  file=sys.stderr)
        for job in runs.incomplete:
            print(f"vqbench: incomplete job {job.name} (no {METRICS_FILE} or {FAILED_FILE})", file=sys.stderr)
        if runs.failed or runs.incomplete:
            sys.exit(1)
