"""What the process spends: the wall-clock seconds of a phase and its peak resident memory.

``timed(timings, key)`` records the seconds its block took as ``timings[key]`` (only when the
block completes); ``reset_peak_rss`` before a phase and ``peak_rss_mb`` after it give the
phase's own peak memory on Linux (elsewhere the peak since the process started).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager


@contextmanager
def timed(timings: MutableMapping[str, float], key: str) -> Iterator[None]:
    """Store the block's wall-clock seconds (time.perf_counter) as ``timings[key]``."""
    t0 = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak resident set size in MiB since the last ``reset_peak_rss`` (else since start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def reset_peak_rss() -> None:
    """Restart peak-RSS accounting (Linux: writing 5 to /proc/self/clear_refs resets VmHWM),
    so each method's peak is its own; elsewhere the peak stays cumulative."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
