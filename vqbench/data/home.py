"""Where downloaded and cached data live: ``$VQBENCH_DATA``, else ``~/.cache/vqbench``."""

from __future__ import annotations

import os
from pathlib import Path


def data_home(configured: str | os.PathLike | None = None) -> Path:
    """`configured` (a config's cache_dir/root) if set, else $VQBENCH_DATA, else ~/.cache/vqbench."""
    root = configured or os.environ.get("VQBENCH_DATA") or Path.home() / ".cache" / "vqbench"
    return Path(root).expanduser()
