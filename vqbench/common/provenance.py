"""Where a result came from: the code version that computed it, the data files it read (by
content), and the settings that never change a result.

Every run's metrics.json carries ``code`` and ``data`` (run/cli.py):

* ``code``: ``{"version", "results_version", "commit", "dirty", "tree"}``. ``commit`` is the git
  commit of the checkout vqbench was imported from (None for an installed copy outside git),
  ``dirty`` whether its code (``vqbench/``, ``conf/``, ``hydra_plugins/``, ``pyproject.toml``)
  differed from that commit when the process started, and ``tree`` a digest of that code at the
  commit: commits that only add results (a campaign's ledger commits) share it, so pages name
  code versions by it (``describe``); results, docs and scripts do not count.
  ``results_version`` is bumped by hand whenever a change alters what any experiment computes:
  a record of another results version is another job (attempts.py) and pages list the versions
  of their runs (report/), so two code versions that change results are never mixed silently.
* ``data``: ``{label: {"path", "bytes", "sha256"}}`` for every file the run read; a directory
  is digested over its files' relative paths and contents. Two records of one job must have read
  the same bytes, wherever the files lay (``dataset.root`` is free, the checksums are not).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS_VERSION = 1  # bump when a change alters any experiment's numbers (see the module docstring)

# Settings that never change what a run computes: two configs that differ only here describe
# the same job. Used by the sweep resume (run/attempts.py) and the VQ-VAE checkpoint resume
# (experiments/vqvae_state.py, which adds the budget keys it may extend).
RESULT_FREE = ("resume", "progress", "device", "threads", "tags", "logger", "hydra", "dataset.cache_dir",
               "dataset.root", "experiment.eval_every")  # eval_every: evaluation draws no random numbers

# Settings added after records were written, with the value every older record computed with: a
# config holding one at that value describes the same job as an older record without it.
ADDED_DEFAULTS = {"quantizer.search": "beam"}  # AVQ's search (quantizers/avq_authors.py)
ADDED_WHERE = {"quantizer.search": ("quantizer.name", "avq")}  # the configs that have the setting

CODE_PATHS = ("vqbench", "conf", "hydra_plugins", "pyproject.toml")  # what `dirty` looks at
_CHUNK = 1 << 22


def drop_keys(cfg: Any, free: tuple[str, ...], prefix: str = "") -> Any:
    """``cfg`` (nested mappings) without the dotted keys in ``free``."""
    if not isinstance(cfg, Mapping):
        return cfg
    return {k: drop_keys(v, free, f"{prefix}{k}.") for k, v in cfg.items() if f"{prefix}{k}" not in free}


def drop_added_defaults(cfg: Any, prefix: str = "") -> Any:
    """``cfg`` (nested mappings) without the ADDED_DEFAULTS keys that hold their default."""
    if not isinstance(cfg, Mapping):
        return cfg
    out = {}
    for k, v in cfg.items():
        path = f"{prefix}{k}"
        if path in ADDED_DEFAULTS and v == ADDED_DEFAULTS[path]:
            continue
        out[k] = drop_added_defaults(v, f"{path}.")
    return out


def fill_added_defaults(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``cfg`` (a run's config) with the ADDED_DEFAULTS its record predates filled in,
    where the setting exists (ADDED_WHERE): what the run computed with, for pages that list settings."""
    out = copy.deepcopy(dict(cfg))
    for path, default in ADDED_DEFAULTS.items():
        where, value = ADDED_WHERE[path]
        if _get(out, where) == value and _get(out, path, missing := object()) is missing:
            *parents, key = path.split(".")
            node = out
            for p in parents:
                node = node.setdefault(p, {})
            node[key] = default
    return out


def _get(cfg: Any, path: str, default: Any = None) -> Any:
    for part in path.split("."):
        if not isinstance(cfg, Mapping) or part not in cfg:
            return default
        cfg = cfg[part]
    return cfg


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The code this process runs (read once, at the first call: later edits of the checkout
    do not change what an already running process computes)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("vqbench")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        installed = None
    package = Path(__file__).resolve().parents[1]  # .../vqbench
    commit, dirty, tree = _git_state(package.parent)
    return {"version": installed, "results_version": RESULTS_VERSION, "commit": commit, "dirty": dirty, "tree": tree}


def _git_state(root: Path) -> tuple[str | None, bool | None, str | None]:
    """(commit, dirty, code tree digest) of the git checkout at ``root``; Nones when it is not one."""
    if not (root / ".git").exists():
        return None, None, None
    try:
        commit = _git(root, "rev-parse", "HEAD")
        changed = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHS)
    except (OSError, subprocess.SubprocessError):
        return None, None, None
    return commit, bool(changed), _tree_digest(root, commit)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


@functools.lru_cache(maxsize=1024)
def _tree_digest(root: Path, commit: str) -> str | None:
    """Digest of the code's object ids at ``commit`` of the checkout at ``root``; None when that
    commit is not there."""
    try:
        listing = _git(root, "ls-tree", commit, "--", *CODE_PATHS)
    except (OSError, subprocess.SubprocessError):
        return None
    return hashlib.sha1(listing.encode()).hexdigest()


def code_tree(code: Mapping[str, Any] | None, root: Path | None = None) -> str | None:
    """The code tree digest of a record's ``code``: its own, or, for a record older than the
    digest, the digest of its commit looked up in the checkout at ``root`` (this package's by
    default), so that records from commits that changed no code count as one version."""
    if not code:
        return None
    if code.get("tree"):
        return code["tree"]
    root = root or Path(__file__).resolve().parents[2]
    if not code.get("commit") or not (root / ".git").exists():
        return None
    return _tree_digest(root, code["commit"])


def data_record(files: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """``{label: {"path", "bytes", "sha256"}}`` of the files a run reads."""
    out = {}
    for label, path in files.items():
        path = Path(path)
        size, digest = _digest(str(path.resolve()), *_stamp(path))
        out[label] = {"path": str(path), "bytes": size, "sha256": digest}
    return out


def same_data(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two ``data`` records name the same files by content (labels and checksums)."""
    def sums(rec: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: v.get("sha256") for k, v in (rec or {}).items() if isinstance(v, Mapping)}
    return sums(a) == sums(b)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> tuple[int, str]:
    """(bytes, sha256) of a file, or of a directory's files (relative path + content, in order);
    cached per process by path, size and modification time."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        total = 0
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f"{f.relative_to(p).as_posix()}\0".encode())
            total += _hash_file(f, h)
        return total, h.hexdigest()
    return _hash_file(p, h), h.hexdigest()


def _hash_file(path: Path, h: Any) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return n


def short(commit: str | None) -> str:
    """A commit as pages print it: 10 hex digits, or 'unknown'."""
    return commit[:10] if commit else "unknown"


def describe(code: Mapping[str, Any] | None, root: Path | None = None) -> str:
    """One code version as a page names it: 'code 3f2a91c0d4 (results v1)' by its code tree digest
    (commits that changed no code share it; ``code_tree`` looks it up for a record older than the
    digest), or by its commit, e.g. '6b57878e1c (results v1)', when the commit is not in this
    checkout; '..., dirty tree' when the code differed from the commit."""
    if not code:
        return "unrecorded"
    tree = code_tree(code, root)
    name = f"code {short(tree)}" if tree else short(code.get("commit"))
    text = f"{name} (results v{code.get('results_version', '?')})"
    return text + (", dirty tree" if code.get("dirty") else "")
