"""vqbench.report: tables from metrics.json files."""

import json

from vqbench.report import main


def write_run(path, quantizer, bits, mse):
    path.mkdir(parents=True)
    record = {"config": {"quantizer": {"name": quantizer}}, "metrics": {"bits": bits, "mse": mse,
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
