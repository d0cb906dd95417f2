"""One live run per run directory, and a `.hydra/` that describes the results beside it.

* **Lock.** A run holds the lock file ``<run dir>/.vqbench.lock`` until it ends (dirlock.py:
  flock, so a killed run leaves no stale lock); a second run into a directory whose lock is
  held is refused with ``RunDirBusy`` (one line, exit 2).
* **.hydra/.** Hydra writes ``<run dir>/.hydra/{config,hydra,overrides}.yaml`` *before* the
  task function runs, so a refused run (a busy directory, a resume whose checkpoint belongs
  to other settings, any error) would leave ``.hydra/`` describing settings that produced
  nothing there. ``RunDirGuard`` is a Hydra callback that acts before that write: for a
  single run, ``on_run_start`` takes the lock (so a busy directory is refused before Hydra
  writes anything) and renames the existing ``.hydra/`` to ``.hydra.before-<pid>`` (a rename
  needs no free space, so putting it back works on a full disk; a run killed with -9 leaves
  it, and the next run into the directory puts it back first); for a sweep,
  ``on_multirun_start`` locks the sweep directory and copies the ``.hydra/`` files of the job
  directories already there. A job that fails calls ``restore_hydra`` to put them back.
* **Fresh directories.** A single run that fails in a directory it created, leaving nothing
  but ``.hydra/``, ``cli.log`` and the lock, removes them and the directory: a refused run
  leaves nothing a report would list as an incomplete run.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..common.atomic import write_text_atomic
from ..common.errors import write_failed
from .chunk_sweeper import parse_chunk
from .dirlock import LOCK_FILE, RunDirBusy, lock_dir

HYDRA_DIR = ".hydra"
SET_ASIDE = ".hydra.before-"  # + pid: the .hydra/ of the results in the directory, during a run
LOG_FILE = "cli.log"  # Hydra's job log (conf/config.yaml: hydra.job_logging)

_held: dict[Path, int] = {}  # directory -> fd of its locked lock file (this process)
_snapshots: dict[Path, dict[str, bytes]] = {}  # run dir -> .hydra/ files before this run (sweeps)
_set_aside: dict[Path, Path] = {}  # run dir -> where its .hydra/ waits during this run (single runs)
_fresh: set[Path] = set()  # directories this process created
_fresh_parents: dict[Path, list[Path]] = {}  # fresh directory -> the parents created with it, outermost first
_there_before: set[Path] = set()  # the directories under a sweep's directory when the sweep started


def _key(directory: Path | str) -> Path:
    return Path(os.path.abspath(directory))


def acquire(directory: Path | str, what: str = "run directory") -> None:
    """Lock ``directory`` for this process (a no-op when this process already holds it). When
    the lock cannot be taken or written (busy, disk full), what this call created (the lock
    file, the directory and its new parents) is removed again before the error propagates."""
    d = _key(directory)
    if d in _held:
        return
    created = _missing(d)
    try:
        d.mkdir(parents=True, exist_ok=True)
        _held[d] = lock_dir(d, what)
    except BaseException:
        _remove_dirs(created)
        raise
    if created:
        _fresh.add(d)
        _fresh_parents[d] = created[:-1]
    _recover_set_aside(d)


def _missing(d: Path) -> list[Path]:
    """The directories that creating ``d`` creates, ``d`` last."""
    chain = []
    while not d.exists() and d != d.parent:
        chain.append(d)
        d = d.parent
    return chain[::-1]


def _remove_dirs(dirs: list[Path]) -> None:
    """rmdir ``dirs`` innermost first, stopping at the first that is not empty (or gone)."""
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            return


def _recover_set_aside(d: Path) -> None:
    """A run killed while its directory's .hydra/ was set aside left it there: put it back
    (we hold the lock, so its owner is gone)."""
    for old in sorted(d.glob(f"{SET_ASIDE}*")):
        shutil.rmtree(d / HYDRA_DIR, ignore_errors=True)
        os.replace(old, d / HYDRA_DIR)


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


def set_aside_hydra(run_dir: Path | str) -> None:
    """Rename ``run_dir/.hydra`` out of Hydra's way (single runs; see the module docstring)."""
    d = _key(run_dir)
    if (d / HYDRA_DIR).is_dir():
        aside = d / f"{SET_ASIDE}{os.getpid()}"
        os.replace(d / HYDRA_DIR, aside)
        _set_aside[d] = aside


def restore_hydra(run_dir: Path | str, clean_fresh: bool = False) -> bool:
    """Put back the ``.hydra/`` of ``run_dir`` from before this run; True if there was one.
    With `clean_fresh`, a directory this process created and left with nothing but .hydra/,
    cli.log and the lock is removed (a failed single run leaves no empty run behind)."""
    d = _key(run_dir)
    aside = _set_aside.pop(d, None)
    if aside is not None:  # renames only: works on a full disk
        shutil.rmtree(d / HYDRA_DIR, ignore_errors=True)
        os.replace(aside, d / HYDRA_DIR)
        return True
    files = _snapshots.pop(d, None)
    if files:
        try:
            for name, data in files.items():
                _put_back(d / HYDRA_DIR / name, data)
        except (OSError, RuntimeError) as err:
            print(f"vqbench: error: {d / HYDRA_DIR} could not be put back: {err}", file=sys.stderr)
        return True
    if clean_fresh and d in _fresh:
        _remove_empty_run(d)
    return False


def _put_back(path: Path, data: bytes) -> None:
    """Give ``path`` its earlier bytes: nothing to do when Hydra wrote the same bytes again,
    atomically where there is room, and on a full disk in place. Hydra rewrote this file in
    place (truncate, then write), so the space of its earlier bytes is free again; a rename
    would need a second copy's worth. In place is not atomic, but the bytes put back are the
    ones Hydra's own in-place write had already replaced."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    try:
        write_text_atomic(path, data.decode())
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def _remove_empty_run(d: Path) -> None:
    try:
        if {p.name for p in d.iterdir()} - {HYDRA_DIR, LOG_FILE, LOCK_FILE}:
            return  # the run left something (a checkpoint, failed.json): keep it and its .hydra/
        shutil.rmtree(d / HYDRA_DIR, ignore_errors=True)
        for name in (LOG_FILE, LOCK_FILE):
            (d / name).unlink(missing_ok=True)
        d.rmdir()  # fails if another process put its lock file there meanwhile: then it stays
        _fresh.discard(d)
        _remove_dirs(_fresh_parents.pop(d, []))
    except OSError:
        pass


def forget_hydra(run_dir: Path | str) -> None:
    """The run succeeded: drop what was kept of the directory's earlier .hydra/."""
    d = _key(run_dir)
    _snapshots.pop(d, None)
    _fresh.discard(d)
    _fresh_parents.pop(d, None)
    aside = _set_aside.pop(d, None)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def abandon_all(err: BaseException) -> str:
    """After Hydra itself failed (e.g. writing .hydra/*.yaml on a full disk): put back or
    remove what this process's runs changed, release their locks; returns the one line."""
    dirs = list(_held)
    file = _file_hydra_was_writing(err)
    job = _key(file.parent.parent) if file is not None else None  # <job dir>/.hydra/<file>
    where = file or (dirs[-1] if dirs else Path(".")) / HYDRA_DIR
    key = "hydra.sweep.dir" if job is not None and job not in dirs else "hydra.run.dir"
    line = f"{write_failed(where, err)} (the run's settings; choose another {key} or free space)"
    if job is not None and job not in dirs and job not in _there_before:
        _fresh.add(job)  # Hydra made it for a job that never started: remove it if nothing else is there
    for d in dict.fromkeys([*dirs, *([job] if job is not None else [])]):
        restore_hydra(d, clean_fresh=True)
        release(d)
    return line


def _file_hydra_was_writing(err: BaseException) -> Path | None:
    """The ``.hydra/*.yaml`` file whose write raised ``err``: Hydra's ``_save_config(cfg,
    filename, output_dir)`` frame in the traceback names it (the failing write itself carries
    no file name: ENOSPC comes from write(), not open()). None when no such frame is there."""
    tb, found = err.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_save_config" and {"filename", "output_dir"} <= frame.f_locals.keys():
            found = Path(str(frame.f_locals["output_dir"])) / str(frame.f_locals["filename"])
        tb = tb.tb_next
    return found


class RunDirGuard(Callback):
    """Lock and snapshot before Hydra writes ``.hydra/`` (see the module docstring)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # as run_job does, so ${hydra:...} resolves
        chunk = OmegaConf.select(config, "hydra.sweeper.chunk")
        if chunk is not None:
            _refuse(f"hydra.sweeper.chunk={chunk} slices a sweep and this is a single run: add -m "
                    f"(vqbench -m ... hydra.sweeper.chunk={chunk}) or drop it")
        run_dir = _output_dir(config, "hydra.run.dir")
        _refuse_if_busy(run_dir, "run directory", "hydra.run.dir")
        try:
            set_aside_hydra(run_dir)
        except OSError as err:
            _refuse(f"hydra.run.dir={run_dir}: cannot set its .hydra/ aside ({err.strerror or err})")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        chunk = OmegaConf.select(config, "hydra.sweeper.chunk")
        if chunk is not None:  # before the sweep directory exists (Hydra builds the sweeper after this)
            try:
                parse_chunk(chunk)
            except HydraException as err:
                _refuse(str(err))
        sweep_dir = Path(_output_dir(config, "hydra.sweep.dir"))
        _refuse_if_busy(sweep_dir, "sweep directory", "hydra.sweep.dir")
        for hydra_dir in sweep_dir.glob(f"**/{HYDRA_DIR}"):
            snapshot_hydra(hydra_dir.parent)
        _there_before.update(_key(d) for d in sweep_dir.glob("**/") if d.is_dir())


def _output_dir(config: DictConfig, key: str) -> str:
    value = OmegaConf.select(config, key)
    if value is None or not str(value).strip():
        _refuse(f"{key} is empty: give the run a directory ({key}=runs/mine), or leave {key} unset for "
                f"the default under runs/ or multirun/")
    return str(value)


def _refuse(message: str) -> None:
    print(f"vqbench: error: {message}", file=sys.stderr)
    sys.exit(2)


def _refuse_if_busy(directory: Path | str, what: str, key: str) -> None:
    try:
        acquire(directory, what)
    except RunDirBusy as err:
        _refuse(str(err))
    except OSError as err:  # cannot create or open it: a file in the way, no permission, read-only
        _refuse(f"{key}={directory}: cannot use it as the {what} ({err.strerror or err}"
                f"{': ' + str(err.filename) if err.filename and str(err.filename) != str(directory) else ''})")
