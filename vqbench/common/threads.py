"""How many threads a run computes with (torch, faiss, numba): ``threads`` in the config.

The default (``threads: null``) is the physical cores this process may use, at most 4, less
the cores other processes keep busy (the 1-minute load average), and at least 1: on a small
shared machine a run does not fight the others for cores (two threads that wait on each other
were several times slower than one on a loaded 2-core machine), and on an idle laptop it
uses what is there. ``OMP_NUM_THREADS`` set in the environment is taken as the user's choice.
The count used is recorded in metrics.json (environment.torch_threads).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

log = logging.getLogger(__name__)
MAX_DEFAULT = 4


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores, cpu, phys = set(), None, "0"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "processor":
                    cpu = int(value)
                elif key == "physical id":
                    phys = value
                elif key == "core id" and cpu in allowed:
                    cores.add((phys, value))
    except (OSError, ValueError):
        pass
    return max(1, min(len(cores) or len(allowed), len(allowed)))


def default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = min(physical_cores(), MAX_DEFAULT)
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, min(cores, physical_cores() - busy))


def set_threads(cfg: Mapping[str, Any]) -> int:
    """Apply ``threads`` (or the default) to torch, faiss and numba; returns the count."""
    n = cfg.get("threads") or default_threads()
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass
    # torch last: numba.set_num_threads can change the OpenMP count torch reads (after torch has run
    # parallel work, numba's call left torch at 2 threads when 1 was asked for)
    torch.set_num_threads(n)
    return n
