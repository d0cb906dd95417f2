"""One live run per run directory, and a `.hydra/` that describes the results beside it.

* **Lock.** A run holds ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<run dir>/.vqbench.lock``
  until it ends. The kernel drops the lock when the process ends in any way (kill -9
  included), so a killed run never leaves a stale lock; a second run into a directory whose
  lock is held is refused with ``RunDirBusy`` (one line, exit 2).
* **.hydra/.** Hydra writes ``<run dir>/.hydra/{config,hydra,overrides}.yaml`` *before* the
  task function runs, so a refused run (a busy directory, a resume whose checkpoint belongs
  to other settings, any error) would leave ``.hydra/`` describing settings that produced
  nothing there. ``RunDirGuard`` is a Hydra callback that acts before that write: for a
  single run, ``on_run_start`` takes the lock (so a busy directory is refused before Hydra
  writes anything) and keeps a copy of the existing ``.hydra/`` files; for a sweep,
  ``on_multirun_start`` locks the sweep directory and copies the ``.hydra/`` files of the job
  directories already there. A job that fails calls ``restore_hydra`` to put them back.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..common.atomic import write_text_atomic
from ..common.checks import ConfigError

LOCK_FILE = ".vqbench.lock"
HYDRA_DIR = ".hydra"

_held: dict[Path, int] = {}  # directory -> fd of its locked lock file (this process)
_snapshots: dict[Path, dict[str, bytes]] = {}  # run dir -> .hydra/ files before this run


class RunDirBusy(ConfigError):
    """Another live process is running in this directory."""


def _key(directory: Path | str) -> Path:
    return Path(os.path.abspath(directory))


def acquire(directory: Path | str, what: str = "run directory") -> None:
    """Lock ``directory`` for this process (a no-op when this process already holds it)."""
    d = _key(directory)
    if d in _held:
        return
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise RunDirBusy(
            f"{what} {d} is in use by another vqbench run (pid {owner}); wait for it to end "
            f"or choose another directory (hydra.run.dir=... or hydra.sweep.dir=...)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[d] = fd


def release(directory: Path | str) -> None:
    """Drop this process's lock on ``directory`` (the lock file stays: removing a locked
    file would let a third process lock a new file of the same name at once)."""
    fd = _held.pop(_key(directory), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def snapshot_hydra(run_dir: Path | str) -> None:
    """Remember the ``.hydra/`` files of ``run_dir`` as they are now (if any)."""
    hydra_dir = _key(run_dir) / HYDRA_DIR
    if hydra_dir.is_dir():
        files = {p.name: p.read_bytes() for p in hydra_dir.iterdir() if p.is_file()}
        if files:
            _snapshots[_key(run_dir)] = files


def restore_hydra(run_dir: Path | str) -> bool:
    """Put back the ``.hydra/`` files of ``run_dir`` from before this run; True if any."""
    files = _snapshots.pop(_key(run_dir), None)
    if not files:
        return False
    for name, data in files.items():
        write_text_atomic(_key(run_dir) / HYDRA_DIR / name, data.decode())
    return True


def forget_hydra(run_dir: Path | str) -> None:
    _snapshots.pop(_key(run_dir), None)


class RunDirGuard(Callback):
    """Lock and snapshot before Hydra writes ``.hydra/`` (see the module docstring)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # as run_job does, so ${hydra:...} resolves
        run_dir = str(OmegaConf.select(config, "hydra.run.dir"))
        _refuse_if_busy(run_dir, "run directory")
        snapshot_hydra(run_dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        _refuse_if_busy(sweep_dir, "sweep directory")
        for hydra_dir in sweep_dir.glob(f"**/{HYDRA_DIR}"):
            snapshot_hydra(hydra_dir.parent)


def _refuse_if_busy(directory: Path | str, what: str) -> None:
    try:
        acquire(directory, what)
    except (RunDirBusy, OSError) as err:
        print(f"vqbench: error: {err}", file=sys.stderr)
        sys.exit(2)
