"""vqbench.run.ledger: a campaign ledger never loses a finished record."""

from __future__ import annotations

import json
from pathlib import Path

from vqbench.run import ledger


def _record(path: Path, search: str, psnr: float) -> None:
    path.mkdir(parents=True, exist_ok=True)
    record = {"config": {"seed": 0, "quantizer": {"name": "avq", "bits_per_codebook": 6, "search": search}},
              "metrics": {"psnr": psnr}, "code": {"commit": "abc", "dirty": False}, "data": {}}
    (path / "metrics.json").write_text(json.dumps(record))


def _psnr(path: Path) -> float:
    return json.loads((path / "metrics.json").read_text())["metrics"]["psnr"]


def test_a_changed_job_moves_the_earlier_record_aside(tmp_path):
    sweep, book = tmp_path / "sweep", tmp_path / "ledger"
    _record(sweep / "3", "beam", 28.0)
    assert ledger.save(sweep, book) == (1, 1)
    _record(sweep / "3", "beam", 28.0)  # the same record again: nothing to write
    assert ledger.save(sweep, book) == (0, 1)
    _record(sweep / "3", "beam", 28.5)  # the same job, a newer record: replaced in place
    assert ledger.save(sweep, book) == (1, 1) and _psnr(book / "3") == 28.5
    _record(sweep / "3", "authors", 26.0)  # job 3 is now another job: the earlier record is kept
    assert ledger.save(sweep, book) == (1, 2)
    assert _psnr(book / "3") == 26.0 and _psnr(book / "3~1") == 28.5
    _record(sweep / "3", "beam", 27.0)
    ledger.save(sweep, book)
    assert _psnr(book / "3~2") == 26.0 and _psnr(book / "3~1") == 28.5
    # restore brings the moved records back beside the sweep's jobs, where the pages read them
    fresh = tmp_path / "fresh"
    assert ledger.restore(book, fresh) == 3 and _psnr(fresh / "3~1") == 28.5


def test_retire_by_hand(tmp_path, capsys):
    book = tmp_path / "ledger"
    _record(book / "0", "beam", 25.0)
    _record(book / "1", "beam", 26.0)
    assert ledger.main(["retire", str(book), "7"]) == 2 and "does not exist" in capsys.readouterr().err
    assert (book / "0" / "metrics.json").is_file()  # nothing moved when one job is wrong
    assert ledger.main(["retire", str(book), "0", "1"]) == 0
    assert sorted(p.parent.name for p in book.glob("*/metrics.json")) == ["0~1", "1~1"]
