"""The end of a multirun sweep: one summary of which jobs ran and which failed.

A failing job of a sweep does not stop the others (see `cli._hydra_main`); it leaves
`failed.json` in its directory. After the last job this Hydra callback lists the failures
and makes the command exit with status 1, so scripts notice a partial sweep.

A sweep rerun into its own directory with ``resume=true`` skips the jobs that finished
(cli.skip_finished); the summary says how many were skipped and how many ran. It counts
from the files, since joblib jobs run in other processes: a job of this sweep is one whose
``.hydra/`` Hydra wrote after the sweep started; it was skipped when its metrics.json is the
very file (inode, modification time) that was there before the sweep started.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .dirlock import LOCK_FILE
from .results import FAILED_FILE, METRICS_FILE
from .rundir import HYDRA_DIR
from .runs import scan_runs


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.started_ns = 0
        self.before: dict[Path, tuple[int, int]] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # After RunDirGuard (listed first) locked the sweep directory: the lock file's time is
        # the sweep's start on the file system's own clock.
        sweep_dir = Path(str(config.hydra.sweep.dir))
        lock = sweep_dir / LOCK_FILE
        self.started_ns = lock.stat().st_mtime_ns if lock.exists() else time.time_ns()
        self.before = {f: _identity(f) for f in sweep_dir.rglob(METRICS_FILE)}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            runs = scan_runs([sweep_dir])  # the same reading of run directories as vqbench-report
        except (OSError, ValueError) as err:
            print(f"vqbench: sweep {sweep_dir}: cannot read its runs ({err})", file=sys.stderr)
            sys.exit(1)
        total = len(runs.finished) + len(runs.failed) + len(runs.incomplete)
        launched = [h.parent for h in sweep_dir.rglob(HYDRA_DIR) if _launched(h, self.started_ns)]
        skipped = sum(1 for job in launched if self.before.get(job / METRICS_FILE, (-1, -1)) == _identity(job / METRICS_FILE))
        print(f"vqbench: sweep {sweep_dir}: {len(runs.finished)} of {total} jobs finished "
              f"({skipped} skipped as finished before, {len(launched) - skipped} run)", file=sys.stderr)
        for f in runs.failed:
            print(f"vqbench: failed job {Path(f['path']).name} ({' '.join(f['overrides'])}): {f['error']}",
                  file=sys.stderr)
        for job in runs.incomplete:
            print(f"vqbench: incomplete job {job.name} (no {METRICS_FILE} or {FAILED_FILE})", file=sys.stderr)
        if runs.failed or runs.incomplete:
            sys.exit(1)


def _identity(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-2, -2)
    return st.st_ino, st.st_mtime_ns


def _launched(hydra_dir: Path, started_ns: int) -> bool:
    try:
        return (hydra_dir / "config.yaml").stat().st_mtime_ns >= started_ns
    except OSError:
        return False
