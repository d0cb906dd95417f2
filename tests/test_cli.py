"""The Hydra CLI: composition, validation errors, metrics.json, multirun, packaging."""

import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from vqbench.run import cli
from vqbench.run.config import ConfigError
from vqbench.run.schema import GROUP_OPTIONS, option_defaults, to_plain

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["dataset.num_train=2048", "dataset.num_test=512", "dataset.dim=16", "progress=false"]
KMEANS = ["optimizer=kmeans", "optimizer.lloyd_iterations=20"]


def composed(*overrides):
    with initialize_config_module(config_module="vqbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def vqbench(*args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "vqbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_defaults_compose():
    cfg = composed()
    assert cfg.experiment.name == "toy" and cfg.quantizer.name == "rvq" and cfg.optimizer.name == "nsvq"
    assert cfg.dataset.dim == 64 and cfg.seed == 0 and cfg.device == "auto"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["quantizer=pvq", "quantizer.num_codebooks=5"], "not divisible by quantizer.num_codebooks=5"),
        (["quantizer.bits_per_codebook=17"], "quantizer.bits_per_codebook must be in 1..16, got 17"),
        (["quantizer.bits_per_codebook=0"], "quantizer.bits_per_codebook must be in 1..16, got 0"),
        (["quantizer=avq", "quantizer.beam_width=0"], "quantizer.beam_width must be >= 1, got 0"),
        (["quantizer=vq", "quantizer.num_codebooks=2"], "quantizer.num_codebooks must be 1"),
        (["+quantizer.colour=red"], "unknown option 'quantizer.colour'"),
        (["+verbose=1"], "unknown option 'verbose'"),
        (["optimizer.lr=-1"], "optimizer.lr must be > 0, got -1"),
        (["optimizer=kmeans", "optimizer.ema_decay=1.0"], "optimizer.ema_decay must be in [0, 1), got 1.0"),
        (["optimizer.replacement.discard_threshold=2"], "optimizer.replacement.discard_threshold must be in [0, 1]"),
        (["dataset.rho=1.5"], "dataset.rho must be in (-1, 1), got 1.5"),
        (["quantizer=avq", "quantizer.bits_per_codebook=12"], "exceeds"),
    ],
)
def test_invalid_settings_fail_before_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        cli.run(composed(*overrides), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    "args, line",
    [
        (["quantizer.bits_per_codebook=abc"],
         "quantizer.bits_per_codebook: Value 'abc' of type 'str' could not be converted to Integer"),
        (["device=tpu"], "device: Invalid value 'tpu', expected one of [auto, cpu, cuda]"),
        (["dataset.kind=laplacian"], "dataset.kind: Invalid value 'laplacian', expected one of [correlated, uncorrelated, lowrank]"),
        (["optimizer=kmeans", "optimizer.momentum=5"], "unknown option 'optimizer.momentum' (known: name, steps, lloyd_iterations, alternations,"),
        (["quantizer.colour=red"], "unknown option 'quantizer.colour'"),
        (["+verbose=1"], "unknown option 'verbose' (user keys go under tags"),
        (["quantizer=zzz"], "Could not find 'quantizer/zzz' (options: avq, avq_authors, fsq, pvq, rvq, vq)"),
    ],
)
def test_type_and_key_errors_are_one_line_with_status_2(tmp_path, args, line):
    """Errors found while composing (by the schema's types) end like every other config error."""
    res = vqbench(*args, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith(f"vqbench: error: {line}"), res.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_user_keys_live_under_tags(tmp_path):
    """+tags.* is accepted and recorded; a --config-dir preset may add tags too, not other keys."""
    presets = tmp_path / "mine" / "experiment"
    presets.mkdir(parents=True)
    (presets / "tagged.yaml").write_text("# @package _global_\ndefaults:\n  - toy\n  - _self_\n"
                                         "tags:\n  study: ablation\n")
    (presets / "bad.yaml").write_text("# @package _global_\ndefaults:\n  - toy\n  - _self_\n"
                                      "quantizer:\n  colour: red\n")
    res = vqbench("--config-dir", str(tmp_path / "mine"), "experiment=tagged", "+tags.note=baseline",
                  "--cfg", "job", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "study: ablation" in res.stdout and "note: baseline" in res.stdout
    res = vqbench("--config-dir", str(tmp_path / "mine"), "experiment=bad", "--cfg", "job", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip().startswith("vqbench: error: unknown option 'quantizer.colour' (known: name,")
    assert res.stderr.strip().endswith("(in experiment/bad)")


def test_schema_is_the_one_source_of_defaults():
    """The composed defaults are the dataclasses' defaults; YAML presets only override."""
    cfg = to_plain(composed())
    assert cfg["optimizer"] == option_defaults("optimizer", "nsvq")
    assert cfg["quantizer"] == option_defaults("quantizer", "rvq")
    assert cfg["dataset"] == option_defaults("dataset", "toy")
    assert cfg["paper"] == {"figure": None, "mode": None, "sift_steps": 2000} and cfg["tags"] == {}
    kmeans = to_plain(composed("optimizer=kmeans"))["optimizer"]
    assert kmeans["steps"] == 600 and kmeans["lloyd_iterations"] == 25  # steps: accepted (sweeps), ignored
    assert "beta" not in to_plain(composed("optimizer=nsvq"))["optimizer"]
    ann = to_plain(composed("experiment=ann", "quantizer=avq"))
    assert (ann["quantizer"]["num_codebooks"], ann["quantizer"]["bits_per_codebook"], ann["quantizer"]["beam_width"]) \
        == (8, 8, 64)


def _schema_classes(*sections: type) -> set[type]:
    """The schema dataclasses `sections`, their nested sections and their dataclass bases."""
    found: set[type] = set()
    for section in sections:
        found |= {base for base in section.__mro__ if dataclasses.is_dataclass(base)}
        found |= _schema_classes(*(f.default_factory for f in dataclasses.fields(section)
                                   if dataclasses.is_dataclass(f.default_factory)))
    return found


def _schema_keys(*sections: type) -> set[str]:
    """The keys the schema dataclasses `sections` declare, nested sections included (not ``name``)."""
    return {f.name for cls in _schema_classes(*sections) for f in dataclasses.fields(cls)} - {"name"}


def _signature_defaults(package: str):
    """(where, parameter, default) of every function, method and class constructor defined in
    `package`'s modules; the schema's own dataclasses are left out."""
    schema_classes = _schema_classes(*(cls for opts in GROUP_OPTIONS.values() for cls in opts.values()))
    root = importlib.import_module(package)
    modules = [root] + [importlib.import_module(m.name) for m in pkgutil.walk_packages(getattr(root, "__path__", []),
                                                                                       package + ".")]
    for module in modules:
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or obj in schema_classes:
                continue
            found = [(name, obj)] if inspect.isfunction(obj) else []
            if inspect.isclass(obj):
                found += [(f"{name}.{k}", getattr(v, "__func__", v)) for k, v in vars(obj).items()
                          if inspect.isfunction(getattr(v, "__func__", v))]
                if dataclasses.is_dataclass(obj):
                    found.append((name, obj))
            for where, fn in found:
                for p in inspect.signature(fn).parameters.values():
                    if p.default is not inspect.Parameter.empty:
                        yield f"{module.__name__}.{where}", p.name, p.default


# VQ(dim, bits_per_codebook, num_codebooks=1): one codebook is the only value VQ takes (the layers rely on it)
NOT_DEFAULTS = {("vqbench.quantizers.vq.VQ.__init__", "num_codebooks")}


def test_configured_settings_have_no_defaults_outside_the_schema():
    """A configured setting's default is the schema's alone: no function, method or dataclass of
    the modules that read a section gives one of its keys a default of its own (None, "not
    given", is no value). The library layers (vqbench.nn) keep their documented defaults."""
    import vqbench.training  # noqa: F401  (registers the optimizers' sections)
    from vqbench.run.schema import ToyDataset, VQBenchConfig

    top = {f.name for f in dataclasses.fields(VQBenchConfig)}
    scopes = {
        "vqbench.training": _schema_keys(*GROUP_OPTIONS["optimizer"].values()),
        "vqbench.quantizers": _schema_keys(*GROUP_OPTIONS["quantizer"].values()),
        "vqbench.data.toy": _schema_keys(ToyDataset) | {"seed"},
    }
    assert {"beta", "ema_decay", "temperature", "noise_std", "steps", "lloyd_iterations"} <= scopes["vqbench.training"]
    assert "seed" in top and {"rho", "mixing_seed", "rank"} <= scopes["vqbench.data.toy"]
    offending = sorted(f"{where}({key}={default!r})" for package, keys in scopes.items()
                       for where, key, default in _signature_defaults(package)
                       if key in keys and default is not None and (where, key) not in NOT_DEFAULTS)
    assert offending == []


def test_run_writes_metrics_json_and_prints_a_row(tmp_path):
    res = vqbench(*SMALL, *KMEANS, "quantizer=avq", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rd_gap_db" in res.stdout and "avq" in res.stdout
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(record) == {"config", "metrics", "timings", "environment", "code", "data", "finished_at"}
    assert record["code"]["results_version"] >= 1 and record["data"] == {}  # toy data: no files read
    from datetime import datetime, timezone  # when it finished, in UTC (the report's newest-wins rule)
    finished = datetime.fromisoformat(record["finished_at"])
    assert finished.utcoffset().total_seconds() == 0
    assert 0 <= (datetime.now(timezone.utc) - finished).total_seconds() < 600
    m = record["metrics"]
    assert m["bits"] == 16.0 and m["mse"] > 0 and m["rd_bound_mse"] < m["mse"]
    assert m["rd_gap_db"] == pytest.approx(10 * __import__("math").log10(m["mse"] / m["rd_bound_mse"]))
    assert {"data", "train", "encode", "total"} <= set(record["timings"])
    assert record["environment"]["seed"] == 0 and record["environment"]["device"] == "cpu"
    assert record["config"]["quantizer"]["name"] == "avq"
    assert not list((tmp_path / "run").glob(".metrics.json.*"))  # no temp file left
    # the results reach the run's log file too, and the record is readable like any new file
    log = (tmp_path / "run" / "cli.log").read_text()
    assert "rd_gap_db" in log and "timings (s): data" in log and "metrics: " in log
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "run" / "metrics.json").stat().st_mode) == 0o666 & ~umask


def test_help_shows_description_groups_and_examples(tmp_path):
    res = vqbench("--help", cwd=tmp_path)
    assert res.returncode == 0
    out = res.stdout
    assert out.startswith("vqbench: train and compare vector quantizers")
    assert "quantizer: avq, avq_authors, fsq, pvq, rvq, vq" in out
    assert "optimizer: diveq, ema, gumbel, kmeans, nsvq, rotation, sf_diveq, ste" in out
    assert "experiment: ann, toy, vqvae, vqvae_quick" in out
    assert "== Examples ==" in out and "+tags.note=baseline" in out


def test_config_error_is_one_line_and_nonzero(tmp_path):
    res = vqbench("quantizer=pvq", "quantizer.num_codebooks=3", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert lines == ["vqbench: error: quantizer=pvq: data dimension 64 (dataset.dim) is not divisible by "
                     "quantizer.num_codebooks=3"]


def test_cfg_job_prints_composed_config(tmp_path):
    res = vqbench("quantizer=avq", "--cfg", "job", cwd=tmp_path)
    assert res.returncode == 0
    assert "name: avq" in res.stdout and "beam_width: 16" in res.stdout


def test_multirun_leaves_one_metrics_file_per_job(tmp_path):
    res = vqbench("-m", *SMALL, "quantizer=rvq,pvq", "quantizer.bits_per_codebook=2,3", *KMEANS,
                  f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    files = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(files) == 4
    combos = {(json.loads(f.read_text())["config"]["quantizer"]["name"],
               json.loads(f.read_text())["metrics"]["bits"]) for f in files}
    assert combos == {("rvq", 8.0), ("rvq", 12.0), ("pvq", 8.0), ("pvq", 12.0)}


def test_a_sweep_survives_an_invalid_job(tmp_path):
    """Job 0 (M = 3 does not divide 16 dims) fails alone; jobs 1 and 2 still run and write metrics."""
    res = vqbench("-m", *SMALL, "quantizer=pvq", "quantizer.num_codebooks=3,4,2", *KMEANS,
                  f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    sweep = tmp_path / "sweep"
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == ["1", "2"]
    failed = json.loads((sweep / "0" / "failed.json").read_text())
    assert not (sweep / "0" / "metrics.json").exists()
    assert "not divisible by quantizer.num_codebooks=3" in failed["error"]
    assert "quantizer.num_codebooks=3" in failed["overrides"]
    assert failed["config"]["quantizer"]["num_codebooks"] == 3
    assert "vqbench: sweep" in res.stderr and "2 of 3 jobs finished" in res.stderr
    assert "failed job 0" in res.stderr


def test_plain_pip_install_ships_the_configs(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    assert (target / "vqbench" / "conf" / "experiment" / "vqvae_quick.yaml").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    probe = "import vqbench; print(vqbench.__file__)"
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].startswith(str(target))
    res = subprocess.run([sys.executable, "-m", "vqbench", "quantizer=pvq", "--cfg", "job"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "name: pvq" in res.stdout, res.stderr


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_sweep_runs_through_the_cluster_launchers(tmp_path, launcher, monkeypatch):
    """The optional launchers (pip install '.[cluster]'): a two-job sweep, each job's metrics written;
    joblib jobs split the cores between them (when the caller sets no OMP_NUM_THREADS)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=5"]
    res = vqbench("-m", f"hydra/launcher={launcher}", *extra, *SMALL, "quantizer=pvq", "optimizer=kmeans",
                  "quantizer.bits_per_codebook=2,3", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    files = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert [json.loads(f.read_text())["metrics"]["bits"] for f in files] == [8.0, 12.0]
    if launcher == "joblib":
        threads = {json.loads(f.read_text())["environment"]["torch_threads"] for f in files}
        assert threads == {max(1, (os.cpu_count() or 1) // 2)}
