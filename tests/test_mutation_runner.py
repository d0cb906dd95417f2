"""scripts/mutation.py and scripts/mutation_operators.py: the mutants of small sources, exactly; every
mutant of a real module compiles; and a whole pass over a tiny project kills, spares and excuses the
mutants it should."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from script_modules import load_script

ROOT = Path(__file__).resolve().parents[1]


ops = load_script("mutation_operators")
mutation = load_script("mutation")


def edits(source, **where):
    return [(m.operator, m.original, m.replacement) for m in ops.find_mutants(textwrap.dedent(source), "m.py")
            if all(getattr(m, k) == v for k, v in where.items())]


def test_mutants_of_a_small_function_exactly():
    source = """
    def clip(x, hi):
        if x >= hi and not x < 0:
            return hi - 1
        return max(x, 0)
    """
    assert edits(source) == [
        ("compare", "x >= hi", "x > hi"),
        ("boolop", "x >= hi and not x < 0", "x >= hi or not x < 0"),
        ("not", "not x < 0", "x < 0"),
        ("compare", "x < 0", "x <= 0"),
        ("number", "0", "1"),
        ("binop", "hi - 1", "hi + 1"),
        ("number", "1", "2"),
        ("name_swap", "max", "min"),
        ("number", "0", "1"),
    ]


def test_each_operator_kind_on_its_own_construct():
    assert edits("y = a / b\n") == [("binop", "a / b", "a * b")]
    assert edits("y = a // b\n") == [("binop", "a // b", "a / b")]
    assert edits("y += a\n") == [("augassign", "y += a", "y -= a")]
    assert edits("y = -a\n") == [("negate", "-a", "a")]
    assert edits("y = a.T\n") == [("drop_transpose", "a.T", "a")]
    assert edits("y = a.t()\n") == [("drop_transpose", "a.t()", "a")]
    assert edits("y = x.argmin(1)\n") == [("name_swap", "x.argmin", "x.argmax"), ("number", "1", "2")]
    assert edits("y = f(a, tau=t)\n") == [("drop_keyword", "f(a, tau=t)", "f(a)")]
    assert edits("y = flag is None\n") == [("compare", "flag is None", "flag is not None")]
    assert edits("y = k in d\n") == [("compare", "k in d", "k not in d")]
    assert edits("y = 0.5\n") == [("number", "0.5", "1.0")]
    assert edits("y = 0.0\n") == [("number", "0.0", "1.0")]
    assert edits("y = True\n") == [("bool", "True", "False")]


def test_what_is_never_mutated():
    source = '''
    """Module docstring 1 < 2."""
    __all__ = ["f"]


    def f(x: int = 3) -> int:
        """Docstring with 1 + 1."""
        if x < 0:
            raise ValueError(f"x must be >= 0, got {x + 1}")
        assert x != 7, "message " + "text"
        print("progress", x + 1)
        y = x * 2  # pragma: no mutate
        return y
    '''
    found = edits(source)
    # the default (module level: runs when the def runs) and the test of the if; nothing else
    assert found == [("number", "3", "4"), ("compare", "x < 0", "x <= 0"), ("number", "0", "1"),
                     ("compare", "x != 7", "x == 7"), ("number", "7", "8")]


def test_scopes_and_stable_occurrences():
    source = """
    class A:
        size = 2

        def g(self, v):
            def inner():
                return v + 1
            return inner() + v + 1
    """
    found = ops.find_mutants(textwrap.dedent(source), "pkg/m.py")
    by_edit = {(m.qualname, m.original, m.replacement): m for m in found}
    assert by_edit[("A", "2", "3")].function == ""   # the class body runs at import
    inner = by_edit[("A.g.<locals>.inner", "v + 1", "v - 1")]
    assert inner.function == "A.g"                   # patched through its enclosing method
    ones = [m for m in found if m.original == "1" and m.qualname == "A.g"]
    assert [m.occurrence for m in ones] == [0]
    twice = ops.find_mutants("def h(a):\n    return (a + 1) * (a + 1)\n", "m.py")
    plus = [m for m in twice if m.operator == "binop" and m.original == "a + 1"]
    assert [m.occurrence for m in plus] == [0, 1]
    assert len({m.id for m in twice}) == len(twice)
    assert plus[1].id == "m.py::h::binop::a + 1->a - 1#1"


@pytest.mark.parametrize("module", ["vqbench/metrics/images.py", "vqbench/quantizers/avq_kernel.py",
                                    "vqbench/report/figure_text.py"])
def test_every_mutant_of_a_real_module_compiles_and_changes_one_span(module):
    source = (ROOT / module).read_text()
    found = ops.find_mutants(source, module)
    assert len(found) > 20
    assert len({m.id for m in found}) == len(found)
    for m in found:
        mutated = m.apply(source)
        compile(mutated, module, "exec")
        assert mutated != source
        assert mutated[: m.start] == source[: m.start]
        assert mutated[m.start + len(m.replacement):] == source[m.end:]


def test_jitted_functions_are_found_by_decorator():
    source = "from numba import njit\n@njit(cache=True)\ndef k(x):\n    return x\n@njit\ndef j(x):\n    return x\n" \
             "def plain(x):\n    return x\n"
    assert mutation.jitted_functions(source) == {"k", "j"}


def test_tests_for_a_mutant_come_from_its_lines_or_its_module():
    cov = {"lines": {"m.py": {3: ["t::slow", "t::fast"], 7: ["t::other"], 9: ["t::broken"]}},
           "durations": {"t::slow": 2.0, "t::fast": 0.1, "t::other": 0.5, "t::broken": 0.1,
                         "t::reads_a_constant": 0.2, "u::elsewhere": 0.1},
           "failed": ["t::broken"]}

    def at(line, function):
        return ops.Mutant(path="m.py", qualname=function or "<module>", function=function, lineno=line,
                          end_lineno=line, start=0, end=1, operator="number", original="1", replacement="2")

    assert mutation.tests_for(at(3, "f"), cov, set()) == ["t::fast", "t::slow"]      # shortest first
    assert mutation.tests_for(at(11, "h"), cov, set()) == []                         # no test runs line 11
    assert mutation.tests_for(at(9, "g"), cov, set()) == []                          # failing unmutated
    # import-time code: every test that runs code of the module, and every test of a file that imports
    # it (reading a constant or a signature's default runs no line of the module)
    assert mutation.tests_for(at(1, ""), cov, set()) == ["t::fast", "t::other", "t::slow"]
    assert mutation.tests_for(at(1, ""), cov, set(), {"t"}) == ["t::fast", "t::reads_a_constant", "t::other",
                                                                 "t::slow"]
    assert mutation.tests_for(at(1, ""), cov, set(), {"u"}) == ["t::fast", "u::elsewhere", "t::other", "t::slow"]
    assert mutation.tests_for(at(3, "f"), cov, set(), {"u"}) == ["t::fast", "t::slow"]   # not for code in a def
    # a numba kernel: every test that runs code of the module
    assert mutation.tests_for(at(11, "h"), cov, {"h"}) == ["t::fast", "t::other", "t::slow"]


def test_equivalent_list_needs_a_reason(tmp_path):
    path = tmp_path / "eq.txt"
    path.write_text("# header\n\nm.py::f::number::0->1#0  # 0 and 1 both start an empty range\n")
    assert mutation.read_equivalent(path) == {"m.py::f::number::0->1#0": "0 and 1 both start an empty range"}
    path.write_text("m.py::f::number::0->1#0\n")
    with pytest.raises(SystemExit, match=r"eq.txt:1: an equivalent mutant needs its reason"):
        mutation.read_equivalent(path)


def test_kill_rate_leaves_out_equivalents():
    assert mutation.kill_rate({"killed": 8, "timeout": 1, "survived": 1, "equivalent": 5}) == 0.9
    assert mutation.kill_rate({"equivalent": 2}) is None


TINY_MODULE = '''
def clip_add(a, b, hi):
    s = a + b
    return s if s <= hi else hi


def untested(x):
    return x * 2
'''

TINY_TEST = '''
from vqbench.tiny.calc import clip_add


def test_below_the_limit():
    assert clip_add(1, 2, 10) == 3


def test_above_the_limit():
    assert clip_add(4, 9, 10) == 10
'''


def test_a_whole_pass_over_a_tiny_project(tmp_path):
    """Kills what the tests see, spares what they cannot, and excuses the listed equivalent mutant
    (`s <= hi` -> `s < hi`: at s == hi both branches give hi)."""
    root = tmp_path / "proj"
    (root / "vqbench" / "tiny").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "scripts").mkdir()
    (root / "vqbench" / "__init__.py").write_text("")
    (root / "vqbench" / "tiny" / "__init__.py").write_text("")
    (root / "vqbench" / "tiny" / "calc.py").write_text(TINY_MODULE)
    (root / "tests" / "test_calc.py").write_text(TINY_TEST)
    (root / "scripts" / "mutation_equivalent.txt").write_text(
        "vqbench/tiny/calc.py::clip_add::compare::s <= hi->s < hi#0  # at s == hi both branches give hi\n"
        "vqbench/tiny/calc.py::gone::number::1->2#0  # a function since deleted\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutation.py"), "tiny", "--root", str(root)],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    store = json.loads((root / "results" / "mutation.json").read_text())
    status = {(r["original"], r["replacement"]): r["status"] for r in store["records"]}
    assert status == {
        ("a + b", "a - b"): "killed",
        ("s <= hi", "s < hi"): "equivalent",
        ("x * 2", "x / 2"): "not covered",
        ("2", "3"): "not covered",
    }
    text = (root / "results" / "mutation.md").read_text()
    assert "| tiny | 4 | 1 | 0 | 0 | 2 | 0 | 1 | 33.3 % |" in text
    assert "at s == hi both branches give hi" in text
    assert "1 entries of the equivalent list match no mutant any more: `vqbench/tiny/calc.py::gone" in text
    # a second pass with --again reuses the killed mutant and runs nothing new
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutation.py"), "tiny", "--root", str(root),
                            "--again"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    records = json.loads((root / "results" / "mutation.json").read_text())["records"]
    assert [r.get("reused") for r in records if r["status"] == "killed"] == [True]


def test_reclassify_follows_the_equivalent_list():
    records = [{"id": "a", "status": "survived"}, {"id": "b", "status": "equivalent", "reason": "old"},
               {"id": "c", "status": "killed"}, {"id": "d", "status": "not covered"}]
    out = mutation.reclassify(records, {"a": "why a", "c": "listed but killed", "d": "why d"})
    assert out == [{"id": "a", "status": "equivalent", "reason": "why a"}, {"id": "b", "status": "survived"},
                   {"id": "c", "status": "killed"}, {"id": "d", "status": "equivalent", "reason": "why d"}]
    assert records[1]["status"] == "equivalent"   # the input is left as it was


def test_importing_test_files_by_module_package_or_dotted_name(tmp_path):
    (tmp_path / "tests").mkdir()
    files = {
        "tests/test_a.py": "from vqbench.nn.layer import QuantizerLayer\n",
        "tests/test_b.py": "from vqbench.nn import checks\n",                 # the package: may read any module
        "tests/test_c.py": "import vqbench\nx = vqbench.nn.layer.DEFAULT\n",   # the dotted name
        "tests/test_d.py": "from vqbench.nn.layer_init import INITS\n",       # another module
        "tests/test_e.py": "import vqbench.nn\n",
        "tests/test_f.py": "from vqbench.nn.checks import check_codes\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    found = mutation.importing_test_files(tmp_path, "vqbench/nn/layer.py", sorted(files))
    assert found == {"tests/test_a.py", "tests/test_b.py", "tests/test_c.py", "tests/test_e.py"}
    assert mutation.importing_test_files(tmp_path, "vqbench/nn/__init__.py", sorted(files)) == set(files)


def test_project_files_exclude_a_virtual_environment_inside_the_checkout(tmp_path):
    """A venv kept in the checkout (`.venv/`) holds torch, hydra and pytest's plugins: forgetting them
    between mutants broke every run (pytest: 'Error while loading plugin pytest11: KeyError hydra')."""
    root, tree = tmp_path / "proj", tmp_path / "tree0"
    roots = (root, tree)
    assert mutation.is_project_file(str(root / "vqbench" / "quantizers" / "avq.py"), roots)
    assert mutation.is_project_file(str(tree / "tests" / "conftest.py"), roots)
    assert not mutation.is_project_file(
        str(root / ".venv" / "lib" / "python3.11" / "site-packages" / "hydra" / "__init__.py"), roots)
    assert not mutation.is_project_file(str(root / "env" / "lib" / "dist-packages" / "torch" / "x.py"), roots)
    assert not mutation.is_project_file(str(tmp_path / "elsewhere" / "vqbench.py"), roots)
    assert not mutation.is_project_file(None, roots)
