"""Where each campaign of the ledger stands: jobs recorded, jobs left, and their CPU time.

    python scripts/campaign_status.py                      # every campaign under results/campaigns
    python scripts/campaign_status.py results/campaigns/fig4-full --missing

For each ledger directory that keeps its sweep's ``multirun.yaml``, the job list is rebuilt the
way the sweep built it (Hydra's basic sweeper over the preset's ``hydra.sweeper.params`` and the
command's overrides, in that order, so job ``k`` is the sweep's subdirectory ``k``), and compared
with the records present. A job's slice under the campaign's chunk count is the
``hydra.sweeper.chunk=I/N`` that runs it. Time left is estimated from the records: a missing job
takes the mean ``timings.total`` of the recorded jobs with the same overrides apart from the seed,
else of all records; one thread per job, as the campaigns run, so these are CPU-hours on the
machine that wrote the records (records made beside other jobs are slower than on an idle core).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from vqbench.common import provenance

ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILE = "multirun.yaml"
METRICS_FILE = "metrics.json"


@dataclass
class Campaign:
    name: str
    jobs: list[list[str]]  # each job's overrides, in the sweep's order
    chunks: int  # the campaign's chunk count N (1: run as one sweep)
    seconds: dict[int, float] = field(default_factory=dict)  # recorded job -> timings.total
    versions: dict[str, int] = field(default_factory=dict)  # code commit (+dirty) -> records

    @property
    def missing(self) -> list[int]:
        return [k for k in range(len(self.jobs)) if k not in self.seconds]

    def chunk_of(self, job: int) -> int:
        """The I of hydra.sweeper.chunk=I/N that runs this job (chunks take every N-th job)."""
        return job % self.chunks + 1

    def estimate(self, job: int) -> float | None:
        """Seconds the job should take: the mean of its recorded siblings over seeds, else of all."""
        key = _without_seed(self.jobs[job])
        similar = [s for k, s in self.seconds.items() if _without_seed(self.jobs[k]) == key]
        pool = similar or list(self.seconds.values())
        return statistics.fmean(pool) if pool else None


def _without_seed(job: list[str]) -> tuple[str, ...]:
    return tuple(o for o in job if not o.startswith("seed="))


def sweep_jobs(multirun: dict) -> list[list[str]]:
    """The sweep's job list, as Hydra's basic sweeper (and vqbench's chunked one) builds it."""
    hydra = multirun.get("hydra") or {}
    params = (hydra.get("sweeper") or {}).get("params") or {}
    task = (hydra.get("overrides") or {}).get("task") or []
    strings = [f"{k}={v}" for k, v in params.items()] + [str(o) for o in task]
    overrides = OverridesParser.create().parse_overrides(strings)
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def read_campaign(directory: Path) -> Campaign:
    """The campaign kept in this ledger directory; ValueError naming the file when it cannot be read."""
    sweep_file = directory / SWEEP_FILE
    try:
        multirun = yaml.safe_load(sweep_file.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{sweep_file}: cannot read the sweep's record ({err})") from None
    if not isinstance(multirun, dict):
        raise ValueError(f"{sweep_file}: not a Hydra multirun record")
    chunk = ((multirun.get("hydra") or {}).get("sweeper") or {}).get("chunk")
    chunks = int(str(chunk).split("/")[1]) if chunk else 1
    campaign = Campaign(directory.name, sweep_jobs(multirun), chunks)
    for record_file in directory.glob(f"*/{METRICS_FILE}"):
        if not record_file.parent.name.isdigit():
            continue
        job = int(record_file.parent.name)
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{record_file}: not a readable record ({err})") from None
        if job >= len(campaign.jobs):
            raise ValueError(f"{record_file}: job {job} is outside the sweep of {len(campaign.jobs)} jobs "
                             f"({sweep_file})")
        campaign.seconds[job] = float((record.get("timings") or {}).get("total") or 0.0)
        code = record.get("code") or {}  # named by its code tree digest (ledger commits share it)
        tree = provenance.code_tree(code)
        version = (f"code {tree[:10]}" if tree else str(code.get("commit", "?"))[:10]) + (
            " (dirty)" if code.get("dirty") else "")
        campaign.versions[version] = campaign.versions.get(version, 0) + 1
    return campaign


def ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1-3, 7, 9-10'."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def table(campaigns: list[Campaign]) -> str:
    lines = ["| campaign | recorded | left | chunks left (of N) | CPU-h recorded | CPU-h left (est.) | code versions |",
             "|---|---:|---:|---|---:|---:|---|"]
    for c in campaigns:
        left = c.missing
        estimates = [c.estimate(k) for k in left]
        est = sum(e for e in estimates if e is not None) / 3600
        chunks = f"{ranges(sorted({c.chunk_of(k) for k in left}))} (of {c.chunks})" if left else ""
        versions = ", ".join(f"{v}: {n}" for v, n in sorted(c.versions.items(), key=lambda kv: -kv[1]))
        lines.append(f"| {c.name} | {len(c.seconds)} | {len(left)} | {chunks} | {sum(c.seconds.values()) / 3600:.1f} "
                     f"| {est:.1f} | {versions} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ledgers", nargs="*", type=Path,
                        help="ledger directories (default: every one under results/campaigns with a multirun.yaml)")
    parser.add_argument("--missing", action="store_true", help="list each missing job's overrides and chunk")
    args = parser.parse_args(argv)
    dirs = args.ledgers or sorted(p.parent for p in (ROOT / "results" / "campaigns").glob(f"*/{SWEEP_FILE}"))
    try:
        campaigns = [read_campaign(d) for d in dirs]
    except ValueError as err:
        print(f"campaign_status: {err}", file=sys.stderr)
        return 2
    print(table(campaigns))
    if args.missing:
        for c in campaigns:
            for k in c.missing:
                est = c.estimate(k)
                guess = f", ~{est / 60:.0f} min" if est is not None else ""
                print(f"{c.name} job {k} (chunk {c.chunk_of(k)}/{c.chunks}{guess}): {' '.join(c.jobs[k])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
