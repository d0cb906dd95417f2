"""Running experiments: the config schema and its checks, run directories, results files, the
`vqbench` command and sweeps over finished runs."""
