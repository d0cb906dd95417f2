"""The README's "Use vqbench in your model" section runs as written (with fewer steps)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use vqbench in your model"


def library_code_blocks() -> list[str]:
    """The ```python blocks of the README's library section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end >= 0 else None]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_library_example_is_short_and_trains(capsys):
    blocks = library_code_blocks()
    assert len(blocks) == 1
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 20
    code, n = re.subn(r"^steps = \d+$", "steps = 200", code, flags=re.M)
    assert n == 1, "the example must set its step count as `steps = N` on one line"
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    assert "test MSE" in capsys.readouterr().out
    # 200 steps already take the decoded error well below the data's variance
    assert namespace["mse"] < 0.85 * namespace["x"].var().item()
    assert namespace["codes"].shape == (256, 4)


def test_set_up_names_a_venv_the_install_size_and_the_cpu_wheel_index():
    text = README.read_text(encoding="utf-8")
    setup = text[text.index("## Set-up"):text.index("\n## ", text.index("## Set-up") + 1)]
    assert "python3 -m venv .venv && . .venv/bin/activate" in setup
    assert "5.9 GB" in setup and "--index-url https://download.pytorch.org/whl/cpu" in setup


def test_one_default_for_the_paper_pages():
    """vqbench-report --figure and scripts/reproduce_paper.sh write to reports/paper/ unless told:
    no README example writes over the committed results/paper/ pages without saying --out."""
    text = README.read_text(encoding="utf-8")
    for line in text.splitlines():
        if "vqbench-report" in line and "--figure" in line and "--out" not in line and "#" in line:
            assert "results/paper" not in line.split("#", 1)[1], line
