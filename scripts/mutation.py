"""On-demand mutation pass (issue 23): plant one bug at a time and see whether a test fails.

    pip install -e '.[test]'                                   # coverage is in the test extra
    python scripts/mutation.py metrics common --out results/mutation.md
    python scripts/mutation.py quantizers --jobs 2 --max-mutants 200     # a seeded sample
    python scripts/mutation.py nn --again                      # re-test only last run's survivors

How it works:

1. The project's files (tracked and untracked, not ignored) are copied into one temporary tree per
   worker; nothing in the working tree is ever edited.
2. A coverage map says which tests execute which line: every test file runs once under coverage with
   one context per test (cached per test file, keyed by the file, conftest and vqbench/ sources, in
   ~/.cache/vqbench/mutation).  Tests that fail unmutated are left out of every run.
3. The mutants (scripts/mutation_operators.py) of each package's modules.  For each, the worker writes
   the mutated file into its tree and forks: the child drops every module loaded from the project
   (torch, faiss, numba, ... stay imported, so a run costs ~1 s, not an interpreter start), and runs
   pytest -x on the tests that cover the mutated lines, shortest first.  A failing test kills the
   mutant; so does running past its time limit (3x the tests' own time + 20 s).  A mutant no test
   covers survives without a run.  Code that runs at import (module and class bodies, defaults) and
   code compiled by numba are not seen inside a test: their mutants run every test that covers their
   module.
4. scripts/mutation_equivalent.txt lists mutants that cannot change behaviour, each with its reason;
   they are counted apart and not run.  The page (--out) gives the kill rate per package, killed /
   (all - equivalent), and every surviving mutant; the records go to <out>.json, which --again reads.

Not seen: code run only in a test's subprocess (the CLI tests that start `vqbench`) counts as not
covered, so a few mutants there are reported as surviving although a test would catch them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_operators import Mutant, find_mutants  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("quantizers", "training", "nn", "metrics", "common", "run", "report", "paper")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vqbench" / "mutation"
KILLED, TIMEOUT, SURVIVED, UNCOVERED, EQUIV, ERROR = ("killed", "timeout", "survived", "not covered",
                                                      "equivalent", "error")
STATUSES = (KILLED, TIMEOUT, SURVIVED, UNCOVERED, ERROR, EQUIV)
CACHE_VERSION = 2   # bump when the tree a coverage run sees changes (2: conf/ as vqbench.conf, ../shared linked)
JIT_DECORATORS = ("njit", "jit", "vectorize", "guvectorize")


# ---------------------------------------------------------------------------------------------
# the project tree


def project_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files, relative to root."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                         capture_output=True).stdout.decode()
    return sorted(f for f in out.split("\0") if f and (root / f).is_file())


def copy_tree(root: Path, dest: Path) -> Path:
    """The project's files under `dest`, laid out as the installed package sees them: conf/ is the
    package vqbench.conf (pyproject's package-dir), and ../shared (the read-only data beside the
    checkout, where tests look for it) is linked beside the copy."""
    for rel in project_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if (dest / "conf").is_dir() and (dest / "vqbench").is_dir() and not (dest / "vqbench" / "conf").exists():
        (dest / "vqbench" / "conf").symlink_to(Path("..") / "conf")
    shared = root.parent / "shared"
    if shared.is_dir() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(shared)
    return dest


def source_digest(root: Path, rels: list[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(rels):
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:20]


# ---------------------------------------------------------------------------------------------
# the coverage map


class _ContextPlugin:
    """pytest plugin: one coverage context per test; durations and failures per node id."""

    def __init__(self, cov):
        self.cov = cov
        self.durations: dict[str, float] = defaultdict(float)
        self.failed: set[str] = set()

    def pytest_runtest_protocol(self, item, nextitem):  # noqa: ARG002
        self.cov.switch_context(item.nodeid)

    def pytest_runtest_logreport(self, report):
        self.durations[report.nodeid] += report.duration
        if report.failed:
            self.failed.add(report.nodeid)


def _coverage_of_test_file(tree: Path, test_file: str, out: Path) -> None:
    """Runs in a subprocess (cwd = tree): one test file under coverage, written to `out` as JSON."""
    import coverage
    import pytest

    sys.path.insert(0, str(tree))
    cov = coverage.Coverage(data_file=None, source=[str(tree / "vqbench")], config_file=False)
    plugin = _ContextPlugin(cov)
    cov.start()
    try:
        pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tree), "-o", "addopts=", test_file],
                     plugins=[plugin])
    finally:
        cov.stop()
    data = cov.get_data()
    lines: dict[str, dict[int, list[str]]] = {}
    for measured in data.measured_files():
        rel = Path(measured).resolve().relative_to(tree.resolve()).as_posix()
        by_line = data.contexts_by_lineno(measured)
        lines[rel] = {int(n): sorted(c for c in ctx if c) for n, ctx in by_line.items() if any(ctx)}
    out.write_text(json.dumps({"lines": lines, "durations": plugin.durations, "failed": sorted(plugin.failed)}))


def coverage_map(tree: Path, test_files: list[str], jobs: int) -> dict:
    """{'lines': {path: {line: [node ids]}}, 'durations': {node id: s}, 'failed': [...]} for these test
    files, each taken from the cache when neither it nor the sources changed."""
    sources = [p.relative_to(tree).as_posix() for p in sorted((tree / "vqbench").rglob("*.py"))]
    sources += [p.relative_to(tree).as_posix() for p in sorted((tree / "tests").glob("*.py"))
                if not p.name.startswith("test_")]
    base = source_digest(tree, sources)
    CACHE.mkdir(parents=True, exist_ok=True)
    pending, parts = [], {}
    for test_file in test_files:
        path = CACHE / f"cov{CACHE_VERSION}-{Path(test_file).stem}-{source_digest(tree, [test_file])}-{base}.json"
        if path.exists():
            parts[test_file] = path
        else:
            pending.append((test_file, path))
    running: list[tuple[subprocess.Popen, str, Path, float]] = []
    while pending or running:
        while pending and len(running) < jobs:
            test_file, path = pending.pop(0)
            tmp = path.with_suffix(".part")
            proc = subprocess.Popen([sys.executable, __file__, "--_coverage", str(tree), test_file, str(tmp)],
                                    cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=_single_thread_env())
            running.append((proc, test_file, path, time.time()))
            print(f"coverage: {test_file} ...", flush=True)
        time.sleep(0.2)
        for entry in list(running):
            proc, test_file, path, started = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            tmp = path.with_suffix(".part")
            if proc.returncode != 0 or not tmp.exists():
                raise SystemExit(f"mutation: the coverage run of {test_file} failed (exit {proc.returncode}):\n"
                                 f"{proc.stderr.read().decode()[-2000:]}")
            os.replace(tmp, path)
            parts[test_file] = path
            print(f"coverage: {test_file} {time.time() - started:.0f} s", flush=True)
    merged: dict = {"lines": defaultdict(lambda: defaultdict(list)), "durations": {}, "failed": []}
    for test_file in test_files:
        part = json.loads(parts[test_file].read_text())
        for rel, by_line in part["lines"].items():
            for line, ids in by_line.items():
                merged["lines"][rel][int(line)].extend(ids)
        merged["durations"].update(part["durations"])
        merged["failed"].extend(part["failed"])
    return merged


def _single_thread_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# ---------------------------------------------------------------------------------------------
# choosing tests for a mutant


def jitted_functions(source: str) -> set[str]:
    """Names of the module-level functions compiled by numba (coverage cannot see inside them)."""
    import ast

    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                d = d.func if isinstance(d, ast.Call) else d
                name = d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else ""
                if name in JIT_DECORATORS:
                    out.add(node.name)
    return out


def importing_test_files(root: Path, module: str, test_files: list[str]) -> set[str]:
    """The test files whose source imports ``module`` (a path under vqbench/) or names it, or imports
    from its package: they may read its module-level values without running any of its lines."""
    dotted = module[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    package = dotted.rsplit(".", 1)[0]
    pattern = re.compile(rf"\b{re.escape(dotted)}\b|\bfrom\s+{re.escape(package)}\s+import\b"
                         rf"|\bimport\s+{re.escape(package)}\s*$", re.MULTILINE)
    return {t for t in test_files if pattern.search((root / t).read_text())}


def tests_for(mutant: Mutant, cov: dict, jitted: set[str], importers: set[str] = frozenset()) -> list[str]:
    """The node ids to run against a mutant, shortest first (failing-unmutated tests left out).
    ``importers``: the test files that import the mutant's module (`importing_test_files`)."""
    by_line = cov["lines"].get(mutant.path, {})
    # module and class bodies and def-time defaults run at import, outside any test's context: every
    # test that runs code of the module may depend on them; so may any test of a numba-compiled function
    if not mutant.function or mutant.function.split(".")[0] in jitted:
        ids = {i for ids in by_line.values() for i in ids}
        if not mutant.function:
            # and a test that only reads them (a constant, a signature's default, a table of numbers)
            # runs none of the module's lines: every test of a test file that imports the module
            ids |= {i for i in cov["durations"] if i.split("::")[0] in importers}
    else:
        ids = {i for n in range(mutant.lineno, mutant.end_lineno + 1) for i in by_line.get(n, ())}
    ids -= set(cov["failed"])
    return sorted(ids, key=lambda i: (cov["durations"].get(i, 0.0), i))


# ---------------------------------------------------------------------------------------------
# the worker: write, fork, run pytest in the child, restore


def is_project_file(file: str | None, roots: tuple[Path, ...]) -> bool:
    """Whether a module's file is the project's own: under one of the roots, and not an installed
    package of a virtual environment kept inside the checkout (`python -m venv .venv`), whose torch,
    hydra and pytest plugins must stay imported across mutants."""
    if not file:
        return False
    path = Path(file)
    for root in roots:
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        return not {"site-packages", "dist-packages"} & set(rel.parts)
    return False


class Worker:
    """Runs mutants in one private tree.  The process has torch & co. imported once; every mutant runs
    in a forked child that re-imports only the project's own modules."""

    def __init__(self, tree: Path):
        self.tree = tree.resolve()
        self.runs = 0
        self._warm()

    def _warm(self) -> None:
        os.chdir(self.tree)
        sys.dont_write_bytecode = True
        sys.path.insert(0, str(self.tree))
        import pytest

        try:
            import torch

            torch.set_num_threads(1)   # no thread pool before fork: a forked child must start its own
        except ImportError:
            pass
        # import everything the tests import (collect-only), then forget the project's own modules
        pytest.main(["-q", "--collect-only", "-p", "no:cacheprovider", "--rootdir", str(self.tree),
                     "-o", "addopts=", "tests"], plugins=[])
        self._forget_project()

    def _forget_project(self) -> None:
        roots = (self.tree, ROOT)   # ROOT: a project module the editable install resolved
        for name, module in list(sys.modules.items()):
            if (is_project_file(getattr(module, "__file__", None), roots) or name == "conftest"
                    or name.startswith(("vqbench", "hydra_plugins"))):
                del sys.modules[name]

    def run(self, mutant: Mutant, node_ids: list[str], limit: float) -> tuple[str, float]:
        """The mutant's verdict on these tests, and the seconds it took.  When pytest cannot run the node
        ids (exit 3-5: a test module that no longer imports, parameters whose ids the mutant changed),
        their files are run whole: an import error there is a kill, changed ids simply run."""
        path = self.tree / mutant.path
        original = path.read_text()
        stat = path.stat()
        started = time.time()
        try:
            path.write_text(mutant.apply(original))
            # a distinct mtime per run: numba's disk cache (keyed by mtime and size) must never take one
            # mutant, or the original, for another
            self.runs += 1
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + self.runs * 1_000_000_000))
            status = self._pytest(node_ids, limit)
            if status == ERROR:
                files = sorted({i.split("::")[0] for i in node_ids})
                status = self._pytest(files, 3 * limit + 60)
        finally:
            path.write_text(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return status, time.time() - started

    def _pytest(self, args: list[str], limit: float) -> str:
        pid = os.fork()
        if pid == 0:   # the child
            code = 99
            try:
                if not os.environ.get("MUTATION_VERBOSE"):   # set it to see the child's pytest output
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 1)
                    os.dup2(devnull, 2)
                import pytest

                code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(self.tree),
                                        "-o", "addopts=", *args]))
            finally:
                os._exit(code)
        return self._wait(pid, limit)

    @staticmethod
    def _wait(pid: int, limit: float) -> str:
        deadline = time.time() + limit
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                # pytest: 0 passed, 1 a test failed, 2 collection failed (the mutant breaks an import);
                # 3-5 and our 99: the run itself went wrong
                code = os.waitstatus_to_exitcode(status)
                return {0: SURVIVED, 1: KILLED, 2: KILLED}.get(code, ERROR)
            if time.time() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return TIMEOUT
            time.sleep(0.02)


def _worker_main(tree: str) -> None:
    """--_worker TREE: read mutant jobs (JSON lines) on stdin, answer one JSON line each on stdout."""
    answers = os.fdopen(os.dup(1), "w")   # the protocol's own channel; pytest's output goes to stderr
    os.dup2(2, 1)
    worker = Worker(Path(tree))
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        job = json.loads(line)
        mutant = Mutant(**job["mutant"])
        status, seconds = worker.run(mutant, job["tests"], job["limit"])
        answers.write(json.dumps({"id": mutant.id, "status": status, "seconds": round(seconds, 2)}) + "\n")
        answers.flush()


# ---------------------------------------------------------------------------------------------
# the equivalent-mutant list


def read_equivalent(path: Path) -> dict[str, str]:
    """{mutant id: reason} from lines 'ID  # reason' (blank lines and lines starting with '#' ignored)."""
    out = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        mutant_id, sep, reason = line.partition("  # ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{n}: an equivalent mutant needs its reason: 'ID  # why it cannot change "
                             f"behaviour', got {line!r}")
        out[mutant_id.strip()] = reason.strip()
    return out


def reclassify(records: list[dict], equivalent: dict[str, str]) -> list[dict]:
    """Records under the current equivalent list: listed survivors become equivalent, records no
    longer listed go back to survived (a conservative verdict until the next run)."""
    out = []
    for r in records:
        r = dict(r)
        if r["id"] in equivalent and r["status"] in (SURVIVED, UNCOVERED, ERROR, EQUIV):
            r.update(status=EQUIV, reason=equivalent[r["id"]])
        elif r["status"] == EQUIV:
            r["status"] = SURVIVED
            r.pop("reason", None)
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# the pass


def mutants_of(root: Path, packages: list[str]) -> dict[str, list[Mutant]]:
    out = {}
    for package in packages:
        folder = root / "vqbench" / package
        if not folder.is_dir():
            raise SystemExit(f"mutation: no package vqbench/{package} (choose from {', '.join(PACKAGES)})")
        out[package] = [m for f in sorted(folder.glob("*.py"))
                        for m in find_mutants(f.read_text(), f.relative_to(root).as_posix())]
    return out


def run_pass(args: argparse.Namespace, previous: dict[str, dict]) -> dict:
    """Runs the packages of `args`; returns {'records': [...], 'seconds', 'failing_unmutated'}."""
    started = time.time()
    by_package = mutants_of(args.root, args.packages)
    equivalent = read_equivalent(args.equivalent)
    if args.max_mutants:
        rng = random.Random(args.seed)
        by_package = {p: sorted(rng.sample(ms, min(args.max_mutants, len(ms))), key=lambda m: (m.path, m.start))
                      for p, ms in by_package.items()}
    work = tempfile.mkdtemp(prefix="vqbench-mutation-")
    try:
        trees = [copy_tree(args.root, Path(work) / f"tree{i}") for i in range(args.jobs)]
        test_files = sorted(p.relative_to(args.root).as_posix() for p in (args.root / "tests").glob(args.tests))
        if not test_files:
            raise SystemExit(f"mutation: --tests {args.tests!r} matches no file in tests/")
        cov = coverage_map(trees[0], test_files, args.jobs)
        records = _run_mutants(args.root, by_package, cov, equivalent, previous if args.again else {}, trees)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    folders = tuple(f"vqbench/{p}/" for p in args.packages)
    stale = sorted(i for i in equivalent if i.startswith(folders) and i not in {r["id"] for r in records})
    return {"records": records, "seconds": round(time.time() - started),
            "failing_unmutated": sorted(set(cov["failed"])), "stale_equivalents": stale}


def _run_mutants(root, by_package, cov, equivalent, previous, trees) -> list[dict]:
    jitted = {}
    importers: dict[str, set[str]] = {}
    test_files = sorted({i.split("::")[0] for i in cov["durations"]})
    jobs = []
    records = []
    for package, mutants in by_package.items():
        for m in mutants:
            if m.path not in jitted:
                jitted[m.path] = jitted_functions((root / m.path).read_text())
                importers[m.path] = importing_test_files(root, m.path, test_files)
            record = {"id": m.id, "package": package, "path": m.path, "line": m.lineno, "operator": m.operator,
                      "original": m.original, "replacement": m.replacement}
            tests = tests_for(m, cov, jitted[m.path], importers[m.path])
            record["tests"] = len(tests)
            if m.id in equivalent:
                record.update(status=EQUIV, reason=equivalent[m.id])
            elif m.id in previous and previous[m.id]["status"] in (KILLED, TIMEOUT):
                record.update(status=previous[m.id]["status"], seconds=0.0, reused=True)
            elif not tests:
                record.update(status=UNCOVERED)
            else:
                limit = 20.0 + 3.0 * sum(cov["durations"].get(t, 1.0) for t in tests)
                if m.function.split(".")[0] in jitted[m.path]:
                    limit += 120.0   # numba compiles the mutated kernel first
                jobs.append((record, {"mutant": m.__dict__, "tests": tests, "limit": limit}))
            records.append(record)
    workers = [subprocess.Popen([sys.executable, __file__, "--_worker", str(t)], cwd=t, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=_single_thread_env(),
                                # MUTATION_VERBOSE=1 shows the workers' pytest output (why a mutant errs)
                                stderr=None if os.environ.get("MUTATION_VERBOSE") else subprocess.DEVNULL)
               for t in trees]
    for w in workers:
        ready = w.stdout.readline()
        if not ready.startswith('{"ready"'):
            raise SystemExit("mutation: a worker did not start (run it alone: python scripts/mutation.py "
                             "--_worker <tree>)")
    idle = list(workers)
    busy: dict[int, tuple[subprocess.Popen, dict]] = {}
    queue = list(jobs)
    done = 0
    import selectors

    selector = selectors.DefaultSelector()
    for w in workers:
        selector.register(w.stdout, selectors.EVENT_READ, w)
    try:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="mutants", unit="mutant", disable=not sys.stderr.isatty())
        while queue or busy:
            while queue and idle:
                w = idle.pop()
                record, job = queue.pop(0)
                w.stdin.write(json.dumps(job) + "\n")
                w.stdin.flush()
                busy[w.pid] = (w, record)
            for key, _ in selector.select():
                w = key.data
                line = w.stdout.readline()
                if not line:
                    raise SystemExit("mutation: a worker died")
                answer = json.loads(line)
                _, record = busy.pop(w.pid)
                record.update(status=answer["status"], seconds=answer["seconds"])
                idle.append(w)
                done += 1
                bar.update(1)
                if not sys.stderr.isatty() and done % 25 == 0:
                    print(f"mutants: {done}/{len(jobs)}", flush=True)
        bar.close()
    finally:
        for w in workers:
            w.stdin.close()
            w.wait()
    return records


# ---------------------------------------------------------------------------------------------
# the page


def summary(records: list[dict]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        out[r["package"]][r["status"]] += 1
    return out


def kill_rate(counts: dict[str, int]) -> float | None:
    considered = sum(counts.values()) - counts.get(EQUIV, 0)
    return (counts.get(KILLED, 0) + counts.get(TIMEOUT, 0)) / considered if considered else None


def page(store: dict) -> str:
    """The markdown page of a store {'runs': {package: how it ran}, 'records': [...]}."""
    records, runs = store["records"], store["runs"]
    counts = summary(records)
    packages = [p for p in PACKAGES if p in runs] + sorted(set(runs) - set(PACKAGES))
    lines = ["# Mutation pass", "",
             "Each mutant is one planted bug (`scripts/mutation_operators.py`); it is killed when a test that "
             "covers its lines fails or runs past its time limit (`scripts/mutation.py`). Kill rate = "
             "(killed + timeout) / (mutants - equivalent). Code that tests run only in a subprocess counts as "
             "not covered.", "",
             "| package | mutants | killed | timeout | survived | not covered | error | equivalent | kill rate |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for package in packages:
        c = counts.get(package, {})
        rate = kill_rate(c)
        lines.append(f"| {package} | {sum(c.values())} | " + " | ".join(str(c.get(s, 0)) for s in STATUSES)
                     + f" | {'-' if rate is None else f'{100 * rate:.1f} %'} |")
    lines += ["", "Each package's pass:", ""]
    for package in packages:
        run = runs[package]
        sample = (f"; a seeded sample of {run['sample']} mutants (seed {run['seed']}), so the rate is an "
                  "estimate") if run.get("sample") else ""
        failing = (f"; {len(run['failing_unmutated'])} tests failed unmutated and were left out (listed in the "
                   ".json)" if run.get("failing_unmutated") else "")
        stale = [i for i in run.get("stale_equivalents", []) if i.startswith(f"vqbench/{package}/")]
        stale_text = (f"; {len(stale)} entries of the equivalent list match no mutant any more: "
                      + ", ".join(f"`{i}`" for i in stale)) if stale else ""
        lines.append(f"- {package}: `{run['command']}` on `{run['commit']}`, {run['date']}, "
                     f"{run['seconds']:,} s for the pass it ran with{sample}{failing}{stale_text}.")
    survivors = [r for r in records if r["status"] in (SURVIVED, UNCOVERED, ERROR)]
    lines += ["", f"## Surviving mutants ({len(survivors)})", ""]
    if survivors:
        lines += ["| file:line | operator | original | mutant | status | covering tests |",
                  "|---|---|---|---|---|---:|"]
        for r in survivors:
            lines.append(f"| {r['path']}:{r['line']} | {r['operator']} | `{_cell(r['original'])}` | "
                         f"`{_cell(r['replacement'])}` | {r['status']} | {r['tests']} |")
    equivalents = [r for r in records if r["status"] == EQUIV]
    lines += ["", f"## Equivalent mutants ({len(equivalents)}, listed in scripts/mutation_equivalent.txt)", ""]
    if equivalents:
        lines += ["| file:line | original | mutant | why it cannot change behaviour |", "|---|---|---|---|"]
        for r in equivalents:
            lines.append(f"| {r['path']}:{r['line']} | `{_cell(r['original'])}` | `{_cell(r['replacement'])}` | "
                         f"{_cell(r['reason'], 200)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str, width: int = 90) -> str:
    text = text.replace("|", "\\|").replace("`", "'")
    return text if len(text) <= width else text[: width - 3] + "..."


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_coverage"]:
        return _coverage_of_test_file(Path(argv[1]), argv[2], Path(argv[3]))
    if argv[:1] == ["--_worker"]:
        return _worker_main(argv[1])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", nargs="*", help=f"packages under vqbench/ (default: {' '.join(PACKAGES)})")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--tests", default="test_*.py", help="test files (a glob in tests/), default test_*.py")
    parser.add_argument("--max-mutants", type=int, default=0, help="a seeded sample per package (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--again", action="store_true",
                        help="keep the killed mutants recorded in <out>.json, re-run the rest")
    parser.add_argument("--page-only", action="store_true",
                        help="run nothing: rewrite the page from <out>.json with the current equivalent list "
                             "(a listed survivor counts as equivalent; an unlisted 'equivalent' as survived)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project (default: this checkout)")
    parser.add_argument("--equivalent", type=Path, default=None,
                        help="equivalent mutants (default: <root>/scripts/mutation_equivalent.txt)")
    parser.add_argument("--out", type=Path, default=None, help="default: <root>/results/mutation.md; "
                        "its records go to the same name with .json, where a pass of some packages "
                        "replaces theirs and keeps the others'")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    args.packages = args.packages or list(PACKAGES)
    args.root = args.root.resolve()
    args.equivalent = args.equivalent or args.root / "scripts" / "mutation_equivalent.txt"
    args.out = args.out or args.root / "results" / "mutation.md"
    if not (args.root / ".git").exists():
        parser.error(f"--root {args.root} is not a git checkout (the pass copies its tracked files)")
    store_path = args.out.with_suffix(".json")
    store = json.loads(store_path.read_text()) if store_path.exists() else {"runs": {}, "records": []}
    if args.page_only:
        store["records"] = reclassify(store["records"], read_equivalent(args.equivalent))
        _write_atomic(store_path, json.dumps(store, indent=1) + "\n")
        _write_atomic(args.out, page(store))
        print(f"wrote {args.out} and {store_path} (no mutant run)")
        return None
    previous = {r["id"]: r for r in store["records"] if r["package"] in args.packages}
    result = run_pass(args, previous)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=args.root, capture_output=True,
                            text=True).stdout.strip()
    run = {"command": "python scripts/mutation.py " + " ".join(argv), "commit": commit,
           "date": time.strftime("%Y-%m-%d"), "seconds": result["seconds"], "tests": args.tests,
           "sample": args.max_mutants, "seed": args.seed, "failing_unmutated": result["failing_unmutated"],
           "stale_equivalents": result["stale_equivalents"]}
    store = {"runs": {**store["runs"], **{p: run for p in args.packages}},
             "records": [r for r in store["records"] if r["package"] not in args.packages] + result["records"]}
    _write_atomic(store_path, json.dumps(store, indent=1) + "\n")
    _write_atomic(args.out, page(store))
    for package, counts in summary(result["records"]).items():
        rate = kill_rate(counts)
        print(f"{package}: {dict(counts)}; kill rate {'-' if rate is None else f'{100 * rate:.1f} %'}")
    print(f"wrote {args.out} and {store_path}")


if __name__ == "__main__":
    main()
