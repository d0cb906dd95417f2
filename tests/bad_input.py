"""Shared pieces of the bad-input tests: small valid settings, an in-process `vqbench`
that returns its exit status, and the checks every case makes (one line naming the
culprit; no partial result in the run directory)."""

import json
import tarfile
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module
from PIL import Image

from vqbench.run import cli

TOY = ["dataset.num_train=1024", "dataset.num_test=256", "dataset.dim=8", "quantizer.num_codebooks=2",
       "optimizer.steps=5", "optimizer.batch_size=64", "progress=false", "device=cpu"]
ANN = ["experiment=ann", "quantizer=pvq", "quantizer.num_codebooks=2",
       "quantizer.bits_per_codebook=3", "optimizer=kmeans", "optimizer.lloyd_iterations=2", "experiment.search_k=20",
       "progress=false", "device=cpu"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def execute(run_dir, *overrides):
    return cli.execute(composed(*overrides), Path(run_dir))


def one_line_error(capsys, *culprits):
    """The captured stderr is exactly one `vqbench: error:` line naming every culprit."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vqbench: error: "), err
    for c in culprits:
        assert str(c) in lines[0], (c, lines[0])
    return lines[0]


def no_results(run_dir):
    """Nothing a reader could take for a result: no metrics, checkpoints, codebooks, temp files."""
    names = {p.name for p in Path(run_dir).rglob("*")} if Path(run_dir).exists() else set()
    assert not names & {"metrics.json", "codebooks.pt", "checkpoint.pt", "history.json", "reconstructions.png"}, names
    assert not [n for n in names if n.endswith(".tmp")], names


def strict_json(path):
    def refuse(name):
        raise ValueError(f"{path}: non-standard JSON constant {name}")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


def png_tree(root, n_train=8, n_test=4):
    rng = np.random.default_rng(0)
    for i in range(n_train + n_test):
        d = root / ("train" if i < n_train else "test") / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def tar_gz(src, archive):
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="imgs")
    return archive
