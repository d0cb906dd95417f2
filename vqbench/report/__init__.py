"""Reports from finished runs: run directories -> tables (tables.py) -> figure pages (figure_page.py);
the `vqbench-report` command is cli.py."""
