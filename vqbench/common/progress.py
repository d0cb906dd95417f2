"""Progress bars for long phases: live on a terminal, sparse (every 30 s) in logs, where a
finished bar stays as one ended line (its total time).

Call ``set_postfix(..., refresh=False)``: a forced refresh shows a stale counter and, called
every few steps, floods logs that are meant to get a line every 30 s."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress(iterable: Iterable[Any] | None = None, *, desc: str, enabled: bool = True, **kwargs: Any) -> tqdm:
    interactive = sys.stderr.isatty()
    return tqdm(
        iterable,
        desc=desc,
        disable=not enabled,
        leave=not interactive,  # in a log, end the bar's line so what follows starts afresh
        mininterval=0.1 if interactive else 30.0,
        dynamic_ncols=interactive,
        **kwargs,
    )
