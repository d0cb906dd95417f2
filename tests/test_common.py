"""vqbench/common, module by module, against exact answers: the validators' verdicts and messages,
the memory estimate's terms, timing and peak memory, the default thread count, progress bars,
atomic writes, code/data provenance and learning-curve files (issue 23: the mutation pass found
these only exercised on the way through whole runs)."""

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vqbench.common import atomic, checks, curves, errors, memory, process, progress, provenance, threads
from vqbench.common.checks import ConfigError, check_positive, check_range, check_seed

# -- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, value, message", [
    ({}, None, "x must be >= 0, got None"),
    ({"integer": True}, True, "x must be an integer, got True"),
    ({"integer": True}, 2.0, "x must be an integer, got 2.0"),
    ({"integer": True, "allow_none": True}, 2.5, "x must be an integer or null, got 2.5"),
    ({"lo_open": True}, 0, "x must be > 0, got 0"),
    ({"hi": 5}, 6, "x must be in 0..5, got 6"),
    ({"hi": 5, "hi_open": True}, 5, "x must be in [0, 5), got 5"),
    ({"hi": 5, "lo_open": True}, 0, "x must be in (0, 5], got 0"),
    ({"hi": 2.5}, 3, "x must be in [0, 2.5], got 3"),
    ({}, float("inf"), "x must be a finite number >= 0, got inf"),
    ({}, float("nan"), "x must be a finite number >= 0, got nan"),
    ({}, -1, "x must be >= 0, got -1"),
    ({}, True, "x must be >= 0, got True"),
    ({"allow_none": True}, -1, "x must be >= 0 or null, got -1"),
])
def test_check_range_refuses_with_the_exact_line(kwargs, value, message):
    with pytest.raises(ConfigError) as err:
        check_range("x", value, 0, **{"hi": None, **kwargs})
    assert str(err.value) == message


def test_check_range_upper_bound_alone_and_the_values_it_accepts():
    with pytest.raises(ConfigError, match=r"^x must be <= 1, got 2$"):
        check_range("x", 2, hi=1)
    with pytest.raises(ConfigError, match=r"^x must be < 1, got 1$"):
        check_range("x", 1, hi=1, hi_open=True)
    for value, kwargs in [(0, {}), (5, {"hi": 5}), (4.999, {"hi": 5, "hi_open": True}), (1e-9, {"lo_open": True}),
                          (None, {"allow_none": True}), (3, {"integer": True, "hi": 3})]:
        assert check_range("x", value, 0, **kwargs) is None


def test_check_positive_and_check_seed():
    check_positive({"a": 1, "b": 7}, "s", "a", "b")
    with pytest.raises(ConfigError, match=r"^s\.b must be >= 1, got 0$"):
        check_positive({"a": 1, "b": 0}, "s", "a", "b")
    with pytest.raises(ConfigError, match=r"^s\.a must be an integer, got 1\.5$"):
        check_positive({"a": 1.5}, "s", "a")
    check_positive({"a": None}, "s", "a", allow_none=True)
    with pytest.raises(ConfigError, match="got None"):
        check_positive({"a": None}, "s", "a")
    assert checks.SEED_MAX == 2**63 - 1 == torch.iinfo(torch.int64).max
    check_seed("seed", 0)
    check_seed("seed", checks.SEED_MAX)
    check_seed("seed", None, allow_none=True)
    for bad in (-1, 2**63):
        with pytest.raises(ConfigError, match=rf"^seed must be in 0\.\.{2**63 - 1}, got {bad}$"):
            check_seed("seed", bad)
    with pytest.raises(ConfigError, match=r"^seed must be an integer, got 1\.0$"):
        check_seed("seed", 1.0)
    with pytest.raises(ConfigError, match=r"^seed must be an integer, got None$"):
        check_seed("seed", None)


# -- memory ------------------------------------------------------------------------------------


def test_memory_terms_exactly():
    assert memory.codebook_terms(4, 256, 32) == {"quantizer.num_codebooks=4": 4 * 256 * 32 * 4 * 4}
    assert memory.batch_distance_terms(4, 256, 128, None) == {}
    # batch/256 >= M/4: the batch drives it (equality included)
    assert memory.batch_distance_terms(4, 256, 128, 256) == {"optimizer.batch_size=256": 256 * (4 * 256 + 4 * 128) * 4}
    assert memory.batch_distance_terms(8, 16, 10, 256) == {"quantizer.num_codebooks=8": 256 * (8 * 16 + 4 * 10) * 4}
    terms = {"a=1": 1.0}
    assert memory.add_terms(terms, {"a=1": 2.0, "b=2": 5.0}) is terms
    assert terms == {"a=1": 3.0, "b=2": 5.0}


def test_human_sizes():
    assert [memory.human(n) for n in (0, 1023, 1024, 1536 * 1024, 5 * 2**30, 2**50, 2**60)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 MiB", "5.0 GiB", "1.0 PiB", "1024.0 PiB"]


def test_refuse_if_too_big_names_the_largest_term():
    terms = {"optimizer.batch_size=4096": 3 * 2**30, "quantizer.num_codebooks=8": 2**30}
    assert memory.refuse_if_too_big(terms, limit=4 * 2**30) == 4 * 2**30   # equal to the limit: allowed
    with pytest.raises(ConfigError) as err:
        memory.refuse_if_too_big(terms, limit=4 * 2**30 - 1)
    assert str(err.value) == ("optimizer.batch_size=4096: this run would need about 4.0 GiB of memory (3.0 GiB for "
                              "this setting alone; estimated before any work), more than this machine's 4.0 GiB; "
                              "use a smaller optimizer.batch_size")
    assert memory.physical_memory() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# -- process -----------------------------------------------------------------------------------


def test_timed_stores_the_blocks_seconds_only_when_it_completes(monkeypatch):
    clock = iter([10.0, 12.5, 20.0])
    monkeypatch.setattr(process.time, "perf_counter", lambda: next(clock))
    timings = {}
    with process.timed(timings, "train"):
        pass
    assert timings == {"train": 2.5}
    with pytest.raises(RuntimeError), process.timed(timings, "eval"):
        raise RuntimeError
    assert timings == {"train": 2.5}


def test_peak_rss_reads_vmhwm_and_falls_back_to_getrusage(monkeypatch):
    status = Path("/proc/self/status").read_text()
    hwm_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    assert process.peak_rss_mb() == pytest.approx(hwm_kib / 1024.0, abs=64)

    def no_proc(*args, **kwargs):
        raise OSError("no /proc")

    monkeypatch.setattr(process, "open", no_proc, raising=False)
    import resource

    assert process.peak_rss_mb() == resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- threads -----------------------------------------------------------------------------------

CPUINFO = "".join(f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu % 2}\n\n" for cpu in range(4))


def _cpuinfo(monkeypatch, text, allowed):
    real_open = open

    def fake_open(path, *args, **kwargs):
        if str(path) == "/proc/cpuinfo":
            if text is None:
                raise OSError("no cpuinfo")
            import io

            return io.StringIO(text)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(threads, "open", fake_open, raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(allowed))


def test_physical_cores_count_hyperthreads_once(monkeypatch):
    _cpuinfo(monkeypatch, CPUINFO, {0, 1, 2, 3})
    assert threads.physical_cores() == 2          # cpus 0/2 and 1/3 share a core
    _cpuinfo(monkeypatch, CPUINFO, {0, 2})
    assert threads.physical_cores() == 1          # both allowed cpus on core 0
    _cpuinfo(monkeypatch, None, {0, 1, 2})
    assert threads.physical_cores() == 3          # no cpuinfo: the allowed cpus


def test_default_threads_from_environment_cores_and_load(monkeypatch):
    monkeypatch.setattr(threads, "physical_cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", " 3 ")
    assert threads.default_threads() == 3
    for ignored in ("0", "x", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", ignored)
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (2.4, 0.0, 0.0))
        assert threads.default_threads() == 4     # min(8 cores, at most 4) with 2 busy of 8
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (5.5, 0.0, 0.0))
    assert threads.default_threads() == 2         # 8 - round(5.5) = 2
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert threads.default_threads() == 1         # never below one

    def no_load():
        raise OSError

    monkeypatch.setattr(threads.os, "getloadavg", no_load)
    assert threads.default_threads() == threads.MAX_DEFAULT == 4


def test_set_threads_applies_the_count(monkeypatch):
    """torch, faiss and numba all get the count, whatever parallel work ran before (numba's
    set_num_threads once left torch at 2 threads when 1 was asked for)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    x = torch.randn(300, 300)
    x @ x
    try:
        assert threads.set_threads({"threads": 1}) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "default_threads", lambda: 2)
        assert threads.set_threads({"threads": None}) == 2 and torch.get_num_threads() == 2
        import faiss

        assert faiss.omp_get_max_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- progress ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tty", [False, True])
def test_progress_bar_settings_for_logs_and_terminals(monkeypatch, tty):
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: tty, raising=False)
    bar = progress.progress(range(3), desc="encode", total=3)
    try:
        assert bar.desc == "encode" and bar.total == 3
        assert bar.mininterval == (0.1 if tty else 30.0)
        assert bar.leave is (not tty)
        assert bool(bar.dynamic_ncols) is tty   # tqdm keeps a screen-size function when on
        assert not bar.disable
    finally:
        bar.close()
    assert progress.progress(range(3), desc="x", enabled=False).disable


# -- errors ------------------------------------------------------------------------------------


def test_write_failed_names_the_file_the_reason_and_the_free_space(tmp_path):
    err = errors.write_failed(tmp_path / "metrics.json", OSError(28, "No space left on device"))
    assert isinstance(err, errors.RunFailed)
    text = str(err)
    assert text.startswith(f"cannot write {tmp_path / 'metrics.json'} (OSError: No space left on device); ")
    assert text.endswith(" MiB free on its file system")
    assert "(ValueError: last line)" in str(errors.write_failed(tmp_path / "f", ValueError("first\nlast line")))
    assert "(ValueError: write failed)" in str(errors.write_failed(tmp_path / "f", ValueError("")))
    assert str(errors.write_failed(Path("/nonexistent/dir/f"), ValueError("x"))) == \
        "cannot write /nonexistent/dir/f (ValueError: x)"


# -- atomic ------------------------------------------------------------------------------------


def test_atomic_writes_create_parents_leave_no_temporaries_and_plain_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        target = tmp_path / "a" / "b" / "table.md"
        atomic.write_text_atomic(target, "hello\n")
        assert target.read_text() == "hello\n"
        assert oct(target.stat().st_mode & 0o777) == oct(0o640)
        assert sorted(p.name for p in target.parent.iterdir()) == ["table.md"]
        with atomic.atomic_dir(tmp_path / "x" / "run") as tmp:
            assert tmp.parent == tmp_path / "x" and tmp.name.startswith(".run.")
            (tmp / "f").write_text("1")
        assert (tmp_path / "x" / "run" / "f").read_text() == "1"
        assert oct((tmp_path / "x" / "run").stat().st_mode & 0o777) == oct(0o750)
        with atomic.atomic_dir(tmp_path / "y", prefix="custom.") as tmp:
            assert tmp.name.startswith("custom.")
        with atomic.atomic_path(tmp_path / "z.txt") as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".z.txt.") and tmp.name.endswith(".tmp")
            tmp.write_text("z")
    finally:
        os.umask(old)


def test_atomic_dir_keeps_a_concurrent_winner_and_fails_otherwise(tmp_path):
    target = tmp_path / "run"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "mine").write_text("1")
        target.mkdir()
        (target / "theirs").write_text("2")   # another process finished first
    assert sorted(p.name for p in target.iterdir()) == ["theirs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError), atomic.atomic_dir(blocker) as tmp:
        pass
    assert blocker.read_text() == "not a directory"


def test_move_into_place_replaces_a_directory_but_not_through_a_symlink(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    (old / "stale").write_text("1")
    new.mkdir()
    (new / "fresh").write_text("2")
    atomic.move_into_place(new, old)
    assert sorted(p.name for p in old.iterdir()) == ["fresh"]
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep").write_text("3")
    link = tmp_path / "link"
    link.symlink_to(real)
    src = tmp_path / "src"
    src.mkdir()
    with pytest.raises(OSError):
        atomic.move_into_place(src, link)     # a symlink is not a directory to delete
    assert (real / "keep").read_text() == "3"


def test_json_is_strict_indented_and_converts_numbers(tmp_path):
    path = tmp_path / "m.json"
    atomic.write_json_atomic(path, {"a": float("nan"), "t": torch.tensor([1.5, float("inf")]), "s": np.float32(2.5),
                                    "i": np.int64(3), "z": torch.tensor(4), "n": [1, (2, float("-inf"))]})
    text = path.read_text()
    assert json.loads(text) == {"a": None, "t": [1.5, None], "s": 2.5, "i": 3, "z": 4, "n": [1, [2, None]]}
    assert text.startswith('{\n  "a": null,') and text.endswith("}\n")
    assert atomic.strict_json(np.array(7.0)) == 7.0     # a 0-d array is a number, not a list

    class Array:   # has tolist/ndim but no dtype: only the json default handles it
        ndim = 1

        def tolist(self):
            return [1, 2]

    class Scalar:
        def item(self):
            return 9

    atomic.write_json_atomic(path, {"a": Array(), "s": Scalar()})
    assert json.loads(path.read_text()) == {"a": [1, 2], "s": 9}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        atomic.write_json_atomic(path, {"o": object()})


# -- provenance --------------------------------------------------------------------------------


def test_data_record_of_a_file_and_a_directory(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 10)
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "b").write_bytes(b"12")
    (d / "sub" / "c").write_bytes(b"345")
    rec = provenance.data_record({"file": f, "dir": d})
    assert rec["file"] == {"path": str(f), "bytes": 10, "sha256": hashlib.sha256(b"x" * 10).hexdigest()}
    h = hashlib.sha256()
    for name, content in (("b", b"12"), ("sub/c", b"345")):
        h.update(f"{name}\0".encode())
        h.update(content)
    assert rec["dir"] == {"path": str(d), "bytes": 5, "sha256": h.hexdigest()}
    assert provenance.same_data(rec, json.loads(json.dumps(rec)))
    assert not provenance.same_data(rec, {**rec, "file": {**rec["file"], "sha256": "0"}})


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_git_state_commit_and_dirty_only_for_code_paths(tmp_path):
    assert provenance._git_state(tmp_path) == (None, None, None)
    (tmp_path / "vqbench").mkdir()
    (tmp_path / "vqbench" / "m.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "c")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    commit, dirty, tree = provenance._git_state(tmp_path)
    assert (commit, dirty) == (head, False) and len(tree) == 40
    (tmp_path / "notes.txt").write_text("not code")
    assert provenance._git_state(tmp_path) == (head, False, tree)
    # a commit of results only keeps the code tree digest; a commit of code changes it
    _git(tmp_path, "add", "notes.txt")
    _git(tmp_path, "commit", "-qm", "results")
    commit2, _, tree2 = provenance._git_state(tmp_path)
    assert commit2 != head and tree2 == tree
    (tmp_path / "vqbench" / "m.py").write_text("x = 2\n")
    assert provenance._git_state(tmp_path) == (commit2, True, tree)
    _git(tmp_path, "commit", "-qam", "code")
    assert provenance._git_state(tmp_path)[2] != tree


def test_records_older_than_the_tree_digest_are_named_by_their_commits_code(tmp_path):
    (tmp_path / "vqbench").mkdir()
    (tmp_path / "vqbench" / "m.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "code")
    first, _, tree = provenance._git_state(tmp_path)
    (tmp_path / "results.md").write_text("a result")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "ledger")
    second, _, _ = provenance._git_state(tmp_path)
    (tmp_path / "vqbench" / "m.py").write_text("x = 2\n")
    _git(tmp_path, "commit", "-qam", "code again")
    third, _, tree3 = provenance._git_state(tmp_path)
    old = [{"commit": c, "results_version": 1} for c in (first, second, third)]
    assert [provenance.code_tree(c, tmp_path) for c in old] == [tree, tree, tree3] and tree != tree3
    assert provenance.describe(old[1], tmp_path) == f"code {tree[:10]} (results v1)"
    # a record's own digest wins; a commit this checkout lacks keeps the commit's name
    assert provenance.code_tree({"commit": first, "tree": "own"}, tmp_path) == "own"
    assert provenance.describe({"commit": "f" * 40, "results_version": 1}, tmp_path) == "ffffffffff (results v1)"
    assert provenance.code_tree({"commit": first}, tmp_path / "vqbench") is None  # not a checkout
    assert provenance.code_tree(None) is None


def test_describe_and_short():
    assert provenance.describe(None) == "unrecorded"
    assert provenance.describe({"commit": "0123456789abcdef", "results_version": 1}) == "0123456789 (results v1)"
    assert provenance.describe({"commit": None, "dirty": True}) == "unknown (results v?), dirty tree"
    assert provenance.describe({"commit": "0123456789abcdef", "tree": "fedcba9876543210", "results_version": 1}) == \
        "code fedcba9876 (results v1)"
    assert provenance.drop_keys({"a": {"b": 1, "c": 2}, "d": 3}, ("a.b", "d")) == {"a": {"c": 2}}


# -- curves ------------------------------------------------------------------------------------


def test_curves_file_columns_and_round_trip(tmp_path):
    c = curves.Curves(tmp_path)
    c.add(step=1, train_loss=0.5, zeta=1.0, usage=None)
    c.add(step=2, perplexity=3.25, alpha=2.0)
    c.write()
    text = (tmp_path / "curves.csv").read_bytes()   # bytes: one newline byte per row, no carriage return
    assert text == b"step,train_loss,perplexity,alpha,zeta\n1,0.5,,,1\n2,,3.25,2,\n"
    assert curves.read_curves(tmp_path / "curves.csv") == [{"step": 1.0, "train_loss": 0.5, "zeta": 1.0},
                                                          {"step": 2.0, "perplexity": 3.25, "alpha": 2.0}]
    assert [curves.log_every(n) for n in (0, 199, 200, 401, 10_000)] == [1, 1, 1, 2, 50]
    assert curves.log_every(100, rows=10) == 10


def test_logger_choice_is_checked(monkeypatch):
    curves.check_logger("csv")
    with pytest.raises(ConfigError, match=r"^logger must be one of \['csv', 'tensorboard'\], got 'tb'$"):
        curves.check_logger("tb")
    monkeypatch.setitem(sys.modules, "tensorboard", None)   # not installed
    with pytest.raises(ConfigError, match=r"logger=tensorboard needs the tensorboard package"):
        curves.check_logger("tensorboard")


# -- options and malloc ------------------------------------------------------------------------


def test_an_option_added_after_hydra_loaded_reaches_its_config_store():
    import dataclasses

    from hydra.core.config_store import ConfigStore

    from vqbench.common import options

    @dataclasses.dataclass
    class Tmp:
        name: str = "tmp_opt"

    options.add_option("optimizer", "tmp_opt", Tmp)
    try:
        assert options.REGISTERED["optimizer"]["tmp_opt"] is Tmp
        assert "tmp_opt.yaml" in ConfigStore.instance().repo["optimizer"]
        assert "tmp_opt.yaml" not in ConfigStore.instance().repo        # in its group, not at the root
    finally:
        options.add_option("optimizer", "tmp_opt", None)
    assert "tmp_opt" not in options.REGISTERED["optimizer"]
    assert "tmp_opt.yaml" not in ConfigStore.instance().repo["optimizer"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_sets_the_glibc_thresholds():
    from vqbench.common import malloc

    assert malloc.keep_freed_memory() is True
    assert malloc.keep_freed_memory() is True       # once per process, then a no-op
    assert (malloc.M_TRIM_THRESHOLD, malloc.M_MMAP_THRESHOLD) == (-1, -3)   # glibc malloc.h


# -- more exact answers (issue 23: survivors of the mutation pass) ----------------------------


def test_atomic_dir_creates_every_missing_parent(tmp_path):
    with atomic.atomic_dir(tmp_path / "p" / "q" / "run") as tmp:
        (tmp / "f").write_text("1")
    assert (tmp_path / "p" / "q" / "run" / "f").read_text() == "1"


class _ItemOnly:
    """Has .item() but is no tensor or array (no dtype)."""

    def item(self):
        return 5


class _ScalarWithoutNdim:
    """A numpy-like scalar without .ndim: written as its item."""

    dtype = "float64"

    def item(self):
        return float("inf")


def test_strict_json_converts_only_values_with_a_dtype_and_json_writes_their_items(tmp_path):
    only = _ItemOnly()
    assert atomic.strict_json(only) is only                   # no dtype: left to json's default
    assert atomic.strict_json(_ScalarWithoutNdim()) is None   # its item, inf, becomes null
    atomic.write_json_atomic(tmp_path / "a.json", {"x": _ItemOnly()})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 5}
    import array

    with pytest.raises(TypeError, match=r"not JSON serialisable: array"):   # tolist without ndim, no item
        atomic.write_json_atomic(tmp_path / "b.json", {"x": array.array("d", [1.0])})
    assert not (tmp_path / "b.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_tensorboard_scalars_leave_out_step_epoch_and_non_finite_values(tmp_path, monkeypatch):
    calls = []

    class Writer:
        def __init__(self, logdir):
            calls.append(("open", logdir))

        def add_scalar(self, key, value, step):
            calls.append((key, value, step))

        def flush(self):
            calls.append("flush")

        def close(self):
            calls.append("close")

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    c = curves.Curves(tmp_path, logger="tensorboard")
    c.add(step=3, train_loss=0.5, usage=float("nan"))
    c.add(epoch=2, psnr=20.0)
    c.add(mse=1.0)                                   # neither step nor epoch: the row's number
    c.write()
    assert calls == [("open", str(tmp_path / "tensorboard")), ("train_loss", 0.5, 3), ("psnr", 20.0, 2),
                     ("mse", 1.0, 3), "flush", "close"]


def test_keep_freed_memory_reports_failure_where_mallopt_is_missing_or_refuses(monkeypatch):
    from vqbench.common import malloc

    monkeypatch.setattr(malloc, "_done", False)
    monkeypatch.setattr(malloc.ctypes.util, "find_library", lambda name: None)      # no C library found
    assert malloc.keep_freed_memory() is False
    monkeypatch.setattr(malloc.ctypes.util, "find_library", lambda name: "libc.so.6")

    def no_library(name):
        raise OSError("cannot load")

    monkeypatch.setattr(malloc.ctypes, "CDLL", no_library)
    assert malloc.keep_freed_memory() is False

    class Mallopt:
        def __init__(self, answers):
            self.answers, self.calls = list(answers), []

        def __call__(self, param, value):
            self.calls.append((param, value))
            return self.answers.pop(0)

    for answers, ok in (([1, 0], False), ([0, 1], False), ([1, 1], True)):
        lib = types.SimpleNamespace(mallopt=Mallopt(answers))
        monkeypatch.setattr(malloc.ctypes, "CDLL", lambda name, lib=lib: lib)
        assert malloc.keep_freed_memory() is ok, answers
        assert lib.mallopt.calls[0] == (malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLD)
    assert lib.mallopt.calls == [(malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLD),
                                 (malloc.M_TRIM_THRESHOLD, malloc.TRIM_THRESHOLD)]
    assert malloc.keep_freed_memory() is True and lib.mallopt.calls[2:] == []    # set once per process


def test_memory_units_the_unknown_machine_and_the_batch_or_codebook_driver(monkeypatch):
    assert (memory.F32, memory.F64) == (torch.finfo(torch.float32).bits // 8, torch.finfo(torch.float64).bits // 8)
    # batch / 256 against M / 4: 210 / 256 = 0.82 < 1 = 4 / 4, so the codebooks drive it
    assert list(memory.batch_distance_terms(4, 256, 128, 210)) == ["quantizer.num_codebooks=4"]

    def unknown(name):
        raise ValueError(name)

    monkeypatch.setattr(memory.os, "sysconf", unknown)
    assert memory.physical_memory() == 2**62


def test_code_version_asks_git_about_the_checkout_that_holds_the_package(monkeypatch):
    import vqbench

    roots = []
    monkeypatch.setattr(provenance, "_git_state", lambda root: roots.append(root) or ("c0ffee", False, "7ree"))
    version = provenance.code_version.__wrapped__()
    assert roots == [Path(vqbench.__file__).resolve().parents[1]]
    assert (version["commit"], version["dirty"], version["tree"], version["results_version"]) == (
        "c0ffee", False, "7ree", provenance.RESULTS_VERSION)


def test_git_state_of_a_broken_checkout_and_of_a_git_that_hangs(tmp_path, monkeypatch):
    (tmp_path / ".git").write_text("gitdir: /nonexistent/vqbench-test\n")     # git fails here
    assert provenance._git_state(tmp_path) == (None, None, None)
    seen = {}

    def hangs(args, **kwargs):
        seen.update(kwargs)
        raise subprocess.TimeoutExpired(args, kwargs.get("timeout"))

    monkeypatch.setattr(provenance.subprocess, "run", hangs)
    assert provenance._git_state(tmp_path) == (None, None, None)
    assert seen["check"] is True and 0 < seen["timeout"] <= 60              # a hung git cannot hang a run


def test_physical_cores_read_the_affinity_of_this_process_or_the_cpu_count(monkeypatch):
    monkeypatch.setattr(threads, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no cpuinfo")),
                        raising=False)
    asked = []
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: asked.append(pid) or {0, 1, 5})
    assert threads.physical_cores() == 3 and asked == [0]           # pid 0: this process
    monkeypatch.delattr(threads.os, "sched_getaffinity")
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 3)
    assert threads.physical_cores() == 3
    monkeypatch.setattr(threads.os, "cpu_count", lambda: None)      # unknown: one
    assert threads.physical_cores() == 1


def test_default_threads_edges(monkeypatch):
    monkeypatch.setattr(threads, "physical_cores", lambda: 8)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))   # else the default would be 4
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.default_threads() == 1                           # 1 is a choice, not "unset"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (5.4, 0.0, 0.0))
    assert threads.default_threads() == 3                           # 8 - round(5.4) = 3

    def no_load():
        raise OSError

    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    monkeypatch.setattr(threads.os, "getloadavg", no_load)
    assert threads.default_threads() == 4                           # unknown load: none busy


def test_set_threads_gives_numba_the_count_but_no_more_than_its_pool(monkeypatch):
    numba = pytest.importorskip("numba")
    asked = []
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 3)   # numba's pool, fixed when it starts
    monkeypatch.setattr(numba, "set_num_threads", asked.append)
    before = torch.get_num_threads()
    try:
        assert threads.set_threads({"threads": 1}) == 1 and threads.set_threads({"threads": 5}) == 5
    finally:
        torch.set_num_threads(before)
    assert asked == [1, 3]
