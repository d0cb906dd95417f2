"""Reports from finished runs: run directories -> tables (tables.py) -> figure pages (figure_page.py:
figure_collect -> figure_table -> figure_plot / figure_markdown, figure_index; complexity_page.py for the
counted panels); the `vqbench-report` command is cli.py. pyproject.toml's import-linter contract keeps
the modules in layers."""
