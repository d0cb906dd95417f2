"""Progress bars for long phases: live on a terminal, sparse (every 30 s) in logs."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


class _Bar(tqdm):
    """tqdm whose ``set_postfix`` waits for the next throttled refresh instead of forcing one:
    a forced refresh shows a stale counter (tqdm's loop keeps it local between refreshes) and,
    called every few steps, floods logs that are meant to get a line every 30 s."""

    def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
        super().set_postfix(ordered_dict, refresh=refresh, **kwargs)


def progress(iterable: Iterable[Any] | None = None, *, desc: str, enabled: bool = True, **kwargs: Any) -> tqdm:
    interactive = sys.stderr.isatty()
    return _Bar(
        iterable,
        desc=desc,
        disable=not enabled,
        leave=False,
        mininterval=0.1 if interactive else 30.0,
        dynamic_ncols=interactive,
        **kwargs,
    )
