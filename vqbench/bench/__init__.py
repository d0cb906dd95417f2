"""The estimator benchmark: every gradient estimator x quantizer on the toy, ANN and VQ-VAE tasks
(presets conf/bench/estimators_*.yaml), peer layers of other packages trained in the same loops
(peers.py, peer_runs.py) and the page made from the runs (page.py, from cells.py, table_text.py
and verdicts.py); the command is scripts/bench_estimators.py."""
