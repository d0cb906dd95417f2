"""The estimator benchmark: the presets' job lists, the page made from run records (known means,
spreads, missing cells, verdicts), one tiny chunk of the toy preset end to end, and the peers
(skipped without the `peers` extra)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from vqbench.bench import cells, page, table_text, tasks, verdicts
from vqbench.bench.peers import available

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_estimators.py"


def _methods_that_apply() -> set[str]:
    """quantizer_estimator for every registered estimator that a 4 x 8-bit quantizer of that kind
    accepts (building it raises ValueError where it does not), quantizer_kmeans, and fsq."""
    import vqbench
    from vqbench.nn import ESTIMATORS

    layers = {"rvq": vqbench.RVQ, "pvq": vqbench.PVQ, "avq": vqbench.AVQ}
    out = {"fsq"} | {f"{q}_kmeans" for q in layers}
    for q, cls in layers.items():
        for name in ESTIMATORS:
            try:
                cls(16, num_codebooks=4, codebook_size=256, estimator=name)
            except ValueError:
                continue
            out.add(f"{q}_{name}")
    return out


def test_presets_list_every_method_that_applies_and_no_other():
    methods = tasks.sweep_values("toy", "bench_method")
    assert set(methods) == _methods_that_apply() and len(methods) == len(set(methods))
    assert "rvq_sf_diveq" in methods and "avq_sf_diveq" not in methods
    n = len(methods)
    assert [len(tasks.jobs(t)) for t in ("toy", "ann", "vqvae")] == [n * 2 * 3, (n - 1) * 3, n * 2 * 3]
    assert "fsq" not in tasks.sweep_values("ann", "bench_method")
    assert tasks.sweep_values("toy", "seed") == ("0", "1", "2")
    assert tasks.rates("vqvae") == ("3", "6") and tasks.rates("ann") == ("",)
    assert tasks.method_parts("pvq_sf_diveq") == ("pvq", "sf_diveq") and tasks.method_parts("fsq") == ("fsq", "ste")
    for method in methods:  # every method names a config file
        assert (ROOT / "conf" / "bench_method" / f"{method}.yaml").is_file()


def _record(directory: Path, method: str, bits: int, seed: int, mse: float, peer: dict | None = None,
            train_s: float = 2.0, steps: int = 500) -> None:
    quantizer, optimizer = tasks.method_parts(method)
    config = {"experiment": {"name": "toy"}, "tags": {"bench": "estimators"}, "seed": seed,
              "dataset": {"name": "toy", "kind": "uncorrelated", "dim": 64},
              "quantizer": {"name": quantizer, "num_codebooks": 4, "bits_per_codebook": bits},
              "optimizer": {"name": optimizer, "noise_std": 0.001}}
    if peer is not None:
        config["peer"] = peer
    job = directory / f"{method}-{bits}-{seed}-{(peer or {}).get('name', 'ours')}-{(peer or {}).get('setting', '')}"
    job.mkdir(parents=True)
    record = {"config": config, "metrics": {"mse": mse, "train.steps": float(steps)},
              "timings": {"train": train_s}, "code": {"results_version": 1}, "data": {}}
    (job / "metrics.json").write_text(json.dumps(record))


def _peer(setting: str, noise: float = 0.001) -> dict:
    return {"name": "diveq", "package": "diveq", "variant": "diveq", "setting": setting, "counterpart": "diveq",
            "effective": {"optimizer.noise_std": noise, "optimizer.init": "U(0, 1/K)"}}


def test_page_cells_are_exact_means_and_sample_sds_and_missing_cells_are_counted(tmp_path):
    runs = tmp_path / "runs"
    for seed, mse in enumerate([1.0, 2.0, 4.0]):
        _record(runs, "rvq_nsvq", 3, seed, mse, train_s=1.0 + seed)  # 1, 2, 3 s over 500 steps
    _record(runs, "pvq_ste", 6, 0, 10.0)
    _record(runs, "pvq_ste", 6, 1, 12.0)  # 2 of 3 seeds
    for seed, mse in enumerate([5.0, 5.2, 5.4]):
        _record(runs, "rvq_diveq", 3, seed, mse)
        _record(runs, "rvq_diveq", 3, seed, mse + 0.1, peer=_peer("matched"))  # within the spread
        _record(runs, "rvq_diveq", 3, seed, mse + 1.0, peer=_peer("defaults", 0.07))  # outside it
    _record(runs, "rvq_nsvq", 5, 0, 1.0)  # not a job of the preset: left out, named
    table = cells.collect([runs])

    nsvq = table.cell(cells.RowKey("ours", "rvq", "nsvq"), "toy", "3", "mse")
    assert nsvq.mean == pytest.approx(7 / 3, abs=1e-12) and nsvq.sd == pytest.approx(math.sqrt(7 / 3), abs=1e-12)
    metric = tasks.TASKS["toy"].metrics[0]
    assert table_text.cell_text(nsvq, metric, 3) == "2.333 ± 1.528 (3)"
    assert table_text.cell_text(table.cell(cells.RowKey("ours", "pvq", "ste"), "toy", "6", "mse"), metric, 3) == "11.000 ± 1.414 (2/3)"
    assert table_text.cell_text(None, metric, 3) == "missing (0/3)" and table_text.cell_text(None, metric, None) == "n/a"
    assert table_text.time_text(table, cells.RowKey("ours", "rvq", "nsvq"), tasks.TASKS["toy"]) == "4.0 ms"  # 2 s / 500 steps

    empty, total, seeds_missing, seeds_total = table.missing()
    expected_cells = len(table.expected)
    assert total == expected_cells and empty == expected_cells - 5  # 5 cells hold runs
    assert seeds_total == sum(table.expected.values()) and seeds_missing == seeds_total - 3 - 2 - 3 * 3
    assert len(table.unexpected) == 1

    found = {(v.peer.setting, v.rate): v for v in verdicts.verdicts(table) if v.peer.quantizer == "rvq"
             and v.peer.estimator == "diveq" and v.task.name == "toy"}
    assert found[("matched", "3")].outcome == "reproduces" and found[("matched", "3")].delta == pytest.approx(0.1)
    assert found[("defaults", "3")].outcome == "differs" and found[("matched", "6")].outcome == "open"

    out = tmp_path / "page" / "estimators.md"
    page.write_page([runs], out)
    text = out.read_text()
    assert f"**Missing: {empty} of {total} cells have no run" in text
    # matched DiVeQ: RVQ and PVQ x toy and VQ-VAE x 2 rates; only RVQ toy at 12 bits has runs (it reproduces)
    assert "1 of 12 cells within the seed spread, 0 outside, 11 open" in text
    assert "`optimizer.noise_std`: theirs 0.07, ours 0.001" in text  # defaults' noise named; matched's not
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert "ours,rvq,nsvq,,toy,3,mse,2.333333,1.527525,3,3,4.000,2.000" in rows
    assert out.with_suffix(".png").stat().st_size > 0


def test_one_chunk_of_the_toy_preset_end_to_end(tmp_path):
    """Chunk 1/72 of the toy preset's 144 jobs (jobs 0 and 72: RVQ+NSVQ at 12 bits, seed 0; PVQ+SF-DiVeQ at
    12 bits, seed 1) at a tiny size, through `run` (ledger restore, sweep, ledger save), then the page."""
    sweeps, ledger, out = tmp_path / "sweeps", tmp_path / "ledger", tmp_path / "page" / "estimators.md"
    small = ["optimizer.steps=5", "dataset.num_train=512", "dataset.num_test=256"]
    cmd = [sys.executable, str(SCRIPT), "run", "--task", "toy", "--only", "ours", "--chunk", "1/72",
           "--sweeps", str(sweeps), "--ledger", str(ledger), "--", *small]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.parent.name for p in (ledger / "estimators-toy").glob("*/metrics.json")) == ["0", "72"]
    done = subprocess.run([sys.executable, str(SCRIPT), "page", str(ledger / "estimators-toy"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "| RVQ · nsvq | " in text and text.count("(1/3)") == 2
    assert "+bench=estimators_toy" in text  # the sweep command, read from multirun.yaml


needs_peers = pytest.mark.skipif(not (available("diveq") and available("vqp")),
                                 reason="the peers extra is not installed (pip install -e '.[peers]')")


@needs_peers
def test_authors_diveq_at_matched_settings_trains_as_ours_on_the_toy_task(tmp_path):
    """Same data, start and batches, no replacement window reached: on raw vectors DiVeQ's loss is
    ||x - x_hat||^2 whatever the noise, so the authors' layer and ours reach the same test MSE."""
    import torch

    from vqbench.bench.peer_runs import PeerJob, compose_counterpart, run_job
    from vqbench.bench.peers import PEERS
    from vqbench.experiments import toy

    small = ["optimizer.steps=40", "dataset.num_train=2048", "dataset.num_test=512", "dataset.dim=16"]
    spec = next(s for s in PEERS if s.peer == "diveq" and s.quantizer == "pvq")
    job = PeerJob("toy", spec, "matched", "3", "0")
    assert run_job(job, tmp_path, small) == "finished"
    record = json.loads((tmp_path / job.dirname / "metrics.json").read_text())
    assert record["config"]["peer"]["effective"]["optimizer.noise_std"] == 1e-3
    assert record["config"]["quantizer"]["name"] == "pvq" and record["config"]["optimizer"]["name"] == "diveq"
    assert run_job(job, tmp_path, small) == "skipped"  # resumable job by job

    cfg = compose_counterpart(job, small)
    del cfg["peer"]
    ours = toy.run(cfg, tmp_path / "ours", torch.device("cpu"))
    assert record["metrics"]["mse"] == pytest.approx(ours["metrics"]["mse"], rel=1e-4)


@needs_peers
@pytest.mark.parametrize("name", ["vqp-default", "vqp-no_rotation", "vqp-diveq"])
def test_vector_quantize_pytorch_peers_train_and_record_their_settings(tmp_path, name):
    from vqbench.bench.peer_runs import PeerJob, run_job
    from vqbench.bench.peers import PEERS

    spec = next(s for s in PEERS if s.name == name)
    small = ["optimizer.steps=5", "dataset.num_train=512", "dataset.num_test=256", "dataset.dim=16"]
    for setting in ("defaults", "matched"):
        job = PeerJob("toy", spec, setting, "3", "0")
        assert run_job(job, tmp_path, small) == "finished", (tmp_path / job.dirname / "failed.json").read_text()
        effective = json.loads((tmp_path / job.dirname / "metrics.json").read_text())["config"]["peer"]["effective"]
        if name == "vqp-diveq":
            assert effective["optimizer.noise_std"] == pytest.approx(1e-3 if setting == "matched" else 5e-3 ** 0.5)
        else:
            assert effective["optimizer.ema_decay"] == (0.8 if setting == "defaults" or name == "vqp-default" else 0.99)
            assert effective["optimizer.beta"] == (1.0 if setting == "defaults" else 0.25)


def test_rows_equal_at_every_seed_are_listed_as_coinciding_and_near_misses_are_not(tmp_path):
    from vqbench.bench import coincide

    runs = tmp_path / "runs"
    for seed, mse in enumerate([5.0, 5.2, 5.4]):
        _record(runs, "rvq_nsvq", 3, seed, mse)
        _record(runs, "rvq_ste", 3, seed, mse * (1 + 1e-12))  # the same steps, another summation order
        _record(runs, "rvq_diveq", 3, seed, mse + (1e-6 if seed == 2 else 0.0))  # one seed apart: not equal
        _record(runs, "pvq_nsvq", 3, seed, mse)  # another quantizer: never grouped with RVQ's rows
    _record(runs, "rvq_rotation", 3, 0, 5.0)  # one seed: no evidence
    table = cells.collect([runs])
    groups = coincide.coinciding_groups(table)
    assert [(t, r, q, [row.estimator for row in rows]) for t, r, q, rows in groups] == \
        [("toy", "3", "rvq", ["nsvq", "ste"])]
    lines = coincide.coincide_lines(table)
    assert "- toy 12 b, RVQ: nsvq, ste (3 seeds)" in lines and any(line.startswith("Why:") for line in lines)
    assert "relative difference ≤ 1e-9" in lines[2]
    out = tmp_path / "page" / "estimators.md"
    page.write_page([runs], out, plot_png=False)
    assert "## Estimators that coincide" in out.read_text()
