"""Learning curves of a run: ``curves.csv`` in every run directory (one row per logged training
step or epoch: ``step``, ``epoch``, ``train_loss``, codebook ``perplexity`` and ``usage``, and the
evaluation metrics where a run measures them), and, with ``logger=tensorboard``, TensorBoard
event files in ``<run dir>/tensorboard/`` (torch's ``SummaryWriter``; needs the optional
``tensorboard`` package: ``pip install 'vqbench[tensorboard]'``).

``vqbench-report --curves RUNS`` draws them (vqbench/report/curves.py).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .checks import ConfigError

CURVES_FILE = "curves.csv"
FIRST_COLUMNS = ("step", "epoch", "train_loss", "perplexity", "usage")
LOGGERS = ("csv", "tensorboard")


def check_logger(name: str) -> None:
    """``logger`` is csv or tensorboard; tensorboard needs its package (refused before any work)."""
    if name not in LOGGERS:
        raise ConfigError(f"logger must be one of {list(LOGGERS)}, got {name!r}")
    if name == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("logger=tensorboard needs the tensorboard package (pip install 'vqbench[tensorboard]')") from None


class Curves:
    """Rows of a run's learning curves; ``write()`` saves curves.csv (atomically), and
    TensorBoard scalars when ``logger=tensorboard``."""

    def __init__(self, run_dir: Path | str, logger: str = "csv"):
        self.path = Path(run_dir) / CURVES_FILE
        self.rows: list[dict[str, float]] = []
        self.writer = None
        if logger == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def add(self, **values: Any) -> None:
        """One row (``step`` and/or ``epoch`` plus the measured values; None is left out)."""
        row = {k: float(v) for k, v in values.items() if v is not None}
        self.rows.append(row)
        if self.writer is not None:
            step = int(row.get("step", row.get("epoch", len(self.rows))))
            for key, value in row.items():
                if key not in ("step", "epoch") and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)

    def write(self) -> None:
        """curves.csv with the union of the rows' columns (step, epoch, train_loss, perplexity,
        usage first), empty where a row has no value."""
        keys = [k for k in FIRST_COLUMNS if any(k in r for r in self.rows)]
        keys += sorted({k for r in self.rows for k in r} - set(keys))
        buf = io.StringIO()
        out = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        out.writeheader()
        for row in self.rows:
            out.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
        write_text_atomic(self.path, buf.getvalue())
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def read_curves(path: Path | str) -> list[dict[str, float]]:
    """The rows of a curves.csv (empty cells left out)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def log_every(steps: int, rows: int = 200) -> int:
    """Steps between logged rows so that a run writes about `rows` rows."""
    return max(1, steps // rows)


__all__ = ["CURVES_FILE", "Curves", "check_logger", "log_every", "read_curves"]

