"""vqbench.report.tables: tables from metrics.json files."""

import errno
import json
import os
from pathlib import Path

import pytest
from script_modules import load_script

from vqbench.report.cli import main


def write_run(path, quantizer, bits, mse):
    path.mkdir(parents=True)
    # a job's recorded config says what it ran (two records with one config are one job: runs.py)
    record = {"config": {"quantizer": {"name": quantizer, "bits_per_codebook": bits / 4}}, "metrics": {"bits": bits, "mse": mse,
                                                                       "baseline.pq.recall@10": 0.5},
              "timings": {"total": 1.0}, "environment": {}}
    (path / "metrics.json").write_text(json.dumps(record))


def test_report_tabulates_sorted_rows(tmp_path, capsys):
    write_run(tmp_path / "sweep" / "0", "rvq", 16.0, 2.0)
    write_run(tmp_path / "sweep" / "1", "avq", 16.0, 1.5)
    write_run(tmp_path / "sweep" / "2", "avq", 12.0, 3.0)
    out = tmp_path / "results" / "t"
    rc = main([str(tmp_path / "sweep"), "--out", str(out), "--columns", "quantizer.name", "metrics.bits",
               "metrics.mse", "metrics.baseline.pq.recall@10", "--sort", "quantizer.name", "metrics.bits",
               "--title", "T", "--note", "made by a test"])
    assert rc == 0
    md = (tmp_path / "results" / "t.md").read_text().splitlines()
    assert md[0] == "# T" and "made by a test" in md
    rows = [line for line in md if line.startswith("| ") and "quantizer.name" not in line]
    assert rows == ["| avq | 12 | 3 | 0.5 |", "| avq | 16 | 1.5 | 0.5 |", "| rvq | 16 | 2 | 0.5 |"]
    csv_lines = (tmp_path / "results" / "t.csv").read_text().splitlines()
    assert csv_lines[0] == "quantizer.name,metrics.bits,metrics.mse,metrics.baseline.pq.recall@10"
    assert csv_lines[1] == "avq,12.0,3.0,0.5"


def test_report_errors_on_missing_dir(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--columns", "metrics.mse"]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_pivot_tables(tmp_path):
    write_run(tmp_path / "s" / "0", "rvq", 16.0, 2.0)
    write_run(tmp_path / "s" / "1", "avq", 16.0, 1.5)
    write_run(tmp_path / "s" / "2", "avq", 12.0, 3.0)
    out = tmp_path / "t"
    assert main([str(tmp_path / "s"), "--out", str(out), "--columns", "quantizer.name", "metrics.mse",
                 "--pivot-rows", "quantizer.name", "--pivot-column", "metrics.bits",
                 "--pivot-values", "metrics.mse"]) == 0
    md = (tmp_path / "t.md").read_text()
    assert "## mse by bits" in md and "| quantizer | bits=12 | bits=16 |" in md
    assert "| avq | 3 | 1.5 |" in md and "| rvq |  | 2 |" in md and "## All runs" in md


def test_settings_note_is_read_from_the_runs_configs(tmp_path):
    """The note states the values the runs recorded, per optimizer, and hides machine paths."""
    from vqbench.report.tables import settings_note
    from vqbench.run.runs import load_runs

    for i, (opt, key, value) in enumerate([("nsvq", "steps", 600), ("nsvq", "steps", 300),
                                           ("kmeans", "lloyd_iterations", 25)]):
        d = tmp_path / str(i)
        d.mkdir()
        record = {"config": {"optimizer": {"name": opt, key: value}, "dataset": {"root": "/home/someone/data.tgz"}},
                  "metrics": {}, "timings": {}, "environment": {}}
        (d / "metrics.json").write_text(json.dumps(record))
    note = settings_note(load_runs([tmp_path]), ["optimizer", "dataset"], "optimizer.name")
    lines = note.splitlines()
    assert "- optimizer.name=kmeans (1 runs): `optimizer.name`=kmeans, `optimizer.lloyd_iterations`=25, " \
           "`dataset.root`=.../data.tgz" in lines
    assert "- optimizer.name=nsvq (2 runs): `optimizer.name`=nsvq, `optimizer.steps`=300|600, " \
           "`dataset.root`=.../data.tgz" in lines
    assert "/home/someone" not in note


def test_vqvae_table_aggregates_seeds(tmp_path):
    """scripts/vqvae_table.py: one row per setting with mean and sd over its seeds."""

    for seed, psnr in enumerate([20.0, 22.0, 24.0]):
        d = tmp_path / "runs" / f"rvq-nsvq-24-s{seed}"
        d.mkdir(parents=True)
        cfg = {"experiment": {"name": "vqvae"}, "quantizer": {"name": "rvq"}, "dataset": {"name": "image_folder"},
               "optimizer": {"name": "nsvq", "init": "data"}, "seed": seed}
        metrics = {"bits": 24.0, "bits_per_image": 1536.0, "psnr": psnr, "ssim": 0.5, "mse": 0.01,
                   "psnr_untrained": 10.0, "perplexity_mean": 9.0, "encode_ops": 100.0, "epochs": 3.0,
                   "train_images": 10.0, "train_seconds": 5.0}
        (d / "metrics.json").write_text(json.dumps({"config": cfg, "metrics": metrics, "timings": {"total": 7.0},
                                                    "environment": {"torch": "x", "torch_threads": 1}}))
    table = load_script("vqvae_table")
    assert table.main([str(tmp_path / "runs"), "--out", str(tmp_path / "t")]) == 0
    md = (tmp_path / "t.md").read_text()
    row = [ln for ln in md.splitlines() if ln.startswith("| RVQ")]
    assert row == ["| RVQ | NSVQ | 24 | 1536 | 3 | 22 | 2 | 0.5 | 0 | 0.01 | 10 | 9 | 100 | 3 | 10 | 5 | 7 |  |"]
    assert "`optimizer.init`=data" in md and "`seed`" not in md


def test_report_mean_over_seeds(tmp_path, capsys):
    for i, (q, seed, mse) in enumerate([("avq", 0, 1.0), ("avq", 1, 2.0), ("avq", 2, 6.0), ("rvq", 0, 4.0)]):
        write_run(tmp_path / "s" / str(i), q, 16.0, mse)
        record = json.loads((tmp_path / "s" / str(i) / "metrics.json").read_text())
        record["config"]["seed"] = seed
        (tmp_path / "s" / str(i) / "metrics.json").write_text(json.dumps(record))
    assert main([str(tmp_path / "s"), "--columns", "quantizer.name", "metrics.bits", "seed",
                 "--mean-over", "seed", "--values", "metrics.mse"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| quantizer.name | metrics.bits | seed values | n | metrics.mse mean | metrics.mse sd |" in lines
    assert "| avq | 16 | 0 1 2 | 3 | 3 | 2.646 |" in lines  # sd of 1, 2, 6 = sqrt(7)
    assert "| rvq | 16 | 0 | 1 | 4 |  |" in lines  # one run: no spread
    assert main([str(tmp_path / "s"), "--mean-over", "seed", "--values", "metrics.nope"]) == 2
    assert "metrics.nope" in capsys.readouterr().err


# ------------------------------------------------------------------ bad records, bad --out
def _capture_lines(capsys) -> tuple[list[str], list[str]]:
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err.splitlines()


def test_a_record_without_config_or_metrics_is_unreadable_not_a_blank_row(tmp_path, capsys):
    write_run(tmp_path / "s" / "0", "rvq", 16.0, 2.0)
    for name, text in (("1", "{}"), ("2", '{"config": {}}'), ("3", '{"config": {}, "metrics": []}')):
        (tmp_path / "s" / name).mkdir()
        (tmp_path / "s" / name / "metrics.json").write_text(text)
    assert main([str(tmp_path / "s"), "--columns", "quantizer.name", "metrics.mse"]) == 0
    out, _ = _capture_lines(capsys)
    assert [ln for ln in out if ln.startswith("| ") and "quantizer.name" not in ln] == ["| rvq | 2 |"]
    for name, missing in (("1", "'config' or 'metrics'"), ("2", "'metrics'"), ("3", "'metrics'")):
        assert f"- unreadable: {tmp_path / 's' / name / 'metrics.json'}: not a vqbench record (no {missing} object)" in out


@pytest.mark.parametrize("figure", [False, True], ids=["table", "figure"])
def test_an_out_path_through_a_file_is_one_line_before_any_work(tmp_path, capsys, figure):
    write_run(tmp_path / "s" / "0", "rvq", 16.0, 2.0)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" if figure else tmp_path / "afile" / "t"
    args = ["--figure", "fig4c"] if figure else ["--columns", "quantizer.name"]
    assert main([str(tmp_path / "s"), *args, "--out", str(out)]) == 2
    stdout, err = _capture_lines(capsys)
    assert stdout == [] and err == [f"vqbench-report: error: --out {out}: {tmp_path / 'afile'} is a file, not a directory"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-0555 directory (test_fault_injection.py "
                    "covers a read-only mount)")
def test_an_out_directory_without_write_permission_is_one_line(tmp_path, capsys):
    write_run(tmp_path / "s" / "0", "rvq", 16.0, 2.0)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main([str(tmp_path / "s"), "--out", str(locked / "new" / "t"), "--columns", "quantizer.name"]) == 2
    _, err = _capture_lines(capsys)
    assert err == [f"vqbench-report: error: --out {locked / 'new' / 't'}: cannot create files in {locked} "
                   "(read-only file system or no permission)"]


def test_a_full_disk_while_writing_is_one_line_and_keeps_the_old_table(tmp_path, capsys, monkeypatch):
    from vqbench.common import atomic

    write_run(tmp_path / "s" / "0", "rvq", 16.0, 2.0)
    old = tmp_path / "old" / "t"
    assert main([str(tmp_path / "s"), "--columns", "quantizer.name", "--out", str(old)]) == 0
    before = {p: p.read_bytes() for p in old.parent.iterdir()}
    written = []

    def full_after_one(path, text):  # the .md fits, the .csv finds the disk full
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        Path(path).write_text(text)

    monkeypatch.setattr(atomic, "_write_synced", full_after_one)
    capsys.readouterr()
    for out in (old, tmp_path / "new" / "deeper" / "t"):
        written.clear()
        assert main([str(tmp_path / "s"), "--columns", "quantizer.name", "metrics.mse", "--out", str(out)]) == 2
        stdout, err = _capture_lines(capsys)
        assert stdout == [] and len(err) == 1
        assert err[0].startswith(f"vqbench-report: error: cannot write --out {out} (OSError: No space left on device)")
    assert {p: p.read_bytes() for p in old.parent.iterdir()} == before  # neither file replaced, no temporary left
    assert not (tmp_path / "new").exists()  # the directories it created are gone again


def test_figure_pages_go_to_reports_paper_by_default_as_in_the_paper_script(tmp_path, capsys, monkeypatch):
    from vqbench.report.cli import FIGURE_OUT

    script = (Path(__file__).resolve().parents[1] / "scripts" / "reproduce_paper.sh").read_text()
    assert f"out={FIGURE_OUT}" in script and FIGURE_OUT == Path("reports/paper")
    write_run(tmp_path / "s" / "0", "rvq", 16.0, 2.0)
    monkeypatch.chdir(tmp_path)
    assert main([str(tmp_path / "s"), "--figure", "fig4c"]) == 0
    assert sorted(p.name for p in (tmp_path / "reports" / "paper").iterdir()) == [
        "README.md", "fig4c.csv", "fig4c.md", "fig4c.png"]
    assert not (tmp_path / "results").exists()
