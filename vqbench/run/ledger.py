"""The campaign ledger: finished jobs' records kept in the repository, so that a long campaign
outlives any one process and any one machine.

A campaign sweeps into ``<sweeps>/<figure>-<mode>/campaign/<job>/`` (scripts/reproduce_paper.sh).
The ledger mirrors it as ``results/campaigns/<figure>-<mode>/<job>/metrics.json`` (the small
records only: no checkpoints, logs or images):

* ``save``: after a chunk, every finished record of the sweep (a metrics.json with its config,
  code version and data checksums, metrics all finite) is copied into the ledger, atomically;
  a record already there with the same bytes is left alone. A ledger never loses a finished
  record: when job ``<i>`` of the sweep is now another job (its preset changed, e.g. Fig. 4's AVQ
  search) the earlier record moves to ``<i>~<k>/`` (the first free k), which no sweep job uses
  and the pages still read; `retire` does the same by hand for records a preset change made
  stale before their jobs ran again. The sweep's ``multirun.yaml`` (the
  command as typed, which the pages quote) is kept beside the records.
* ``restore``: before a sweep, every ledger record whose job directory in the sweep has no
  metrics.json is copied there, so ``resume=true`` skips the job when its record is still its
  job's (same config, data and results version: run/attempts.py) and runs it again otherwise.

    python -m vqbench.run.ledger restore results/campaigns/fig5-full multirun/paper/fig5-full/campaign
    python -m vqbench.run.ledger save multirun/paper/fig5-full/campaign results/campaigns/fig5-full
    python -m vqbench.run.ledger retire results/campaigns/fig4-full 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..common.atomic import write_text_atomic
from .attempts import job_key
from .results import METRICS_FILE, non_finite

SWEEP_FILE = "multirun.yaml"  # Hydra's record of the sweep command


def ledger_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path`` if it belongs in a ledger (a finished run that names its code and
    data), else None."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    metrics = record.get("metrics")
    if not isinstance(record.get("config"), dict) or not isinstance(metrics, dict) or not metrics:
        return None
    if non_finite(metrics) or not isinstance(record.get("code"), dict) or not isinstance(record.get("data"), dict):
        return None
    return record


def save(sweep_dir: Path, ledger_dir: Path) -> tuple[int, int]:
    """Copy the sweep's finished records into the ledger: (records written, records in the ledger)."""
    written = 0
    for src in sorted(Path(sweep_dir).glob(f"*/{METRICS_FILE}")):
        if ledger_record(src) is None:
            continue
        dst = Path(ledger_dir) / src.parent.name / METRICS_FILE
        text = src.read_text()
        if dst.is_file() and dst.read_text() == text:
            continue
        earlier = ledger_record(dst) if dst.is_file() else None
        if earlier is not None and job_key(earlier["config"]) != job_key(json.loads(text)["config"]):
            retire(Path(ledger_dir), src.parent.name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(dst, text)
        written += 1
    command = Path(sweep_dir) / SWEEP_FILE
    if command.is_file():
        Path(ledger_dir).mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(ledger_dir) / SWEEP_FILE, command.read_text())
    return written, len(list(Path(ledger_dir).glob(f"*/{METRICS_FILE}")))


def retire(ledger_dir: Path, job: str) -> Path:
    """Move the ledger's record of job ``job`` to ``<job>~<k>/`` (the first free k); returns its new path."""
    k = 1
    while (Path(ledger_dir) / f"{job}~{k}").exists():
        k += 1
    target = Path(ledger_dir) / f"{job}~{k}" / METRICS_FILE
    target.parent.mkdir(parents=True)
    (Path(ledger_dir) / job / METRICS_FILE).rename(target)
    return target


def restore(ledger_dir: Path, sweep_dir: Path) -> int:
    """Copy ledger records into the sweep's job directories that have no record; returns how many."""
    restored = 0
    for src in sorted(Path(ledger_dir).glob(f"*/{METRICS_FILE}")):
        dst = Path(sweep_dir) / src.parent.name / METRICS_FILE
        if dst.exists() or ledger_record(src) is None:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(dst, src.read_text())
        restored += 1
    return restored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vqbench.run.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("save", "restore", "retire"))
    parser.add_argument("source", type=Path, help="save: the sweep directory; restore, retire: the ledger directory")
    parser.add_argument("target", nargs="+", help="save: the ledger directory; restore: the sweep directory; "
                                                  "retire: the job numbers whose records to move aside")
    args = parser.parse_args(argv)
    if args.action == "retire":
        for job in args.target:
            if not (args.source / job / METRICS_FILE).is_file():
                print(f"ledger: error: {args.source / job / METRICS_FILE} does not exist", file=sys.stderr)
                return 2
        for job in args.target:
            print(f"ledger: {args.source / job} -> {retire(args.source, job).parent}", file=sys.stderr)
        return 0
    if len(args.target) != 1:
        parser.error(f"{args.action} takes one target directory")
    args.target = Path(args.target[0])
    if not args.source.is_dir():
        if args.action == "restore":  # a campaign that has no ledger yet
            print(f"ledger: nothing to restore from {args.source}", file=sys.stderr)
            return 0
        print(f"ledger: error: {args.source} is not a directory", file=sys.stderr)
        return 2
    try:
        if args.action == "save":
            written, total = save(args.source, args.target)
            print(f"ledger: {written} records written to {args.target} ({total} in all)", file=sys.stderr)
        else:
            print(f"ledger: {restore(args.source, args.target)} records restored into {args.target}", file=sys.stderr)
    except OSError as err:
        print(f"ledger: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
