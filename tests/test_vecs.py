"""TEXMEX vector files: genuine siftsmall files, round trips, and every malformed-file case."""

from pathlib import Path

import numpy as np
import pytest

from vqbench.data.vecs import iter_float32, read_vecs, to_float32, write_vecs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIFTSMALL = SHARED / "siftsmall-genuine"
needs_siftsmall = pytest.mark.skipif(not SIFTSMALL.is_dir(), reason=f"{SIFTSMALL} not available")


@needs_siftsmall
def test_genuine_siftsmall_queries_and_groundtruth():
    q = read_vecs(SIFTSMALL / "siftsmall_query.fvecs")
    gt = read_vecs(SIFTSMALL / "siftsmall_groundtruth.ivecs")
    assert q.shape == (100, 128) and q.dtype == np.float32
    assert gt.shape == (100, 100) and gt.dtype == np.int32
    assert gt[0, :3].tolist() == [2176, 3752, 882]
    # SIFT descriptors are non-negative integers stored as floats
    assert q.min() >= 0 and np.all(q == np.round(q))
    assert isinstance(q.base, np.memmap) or isinstance(q.base.base, np.memmap)  # not loaded
    assert np.array_equal(read_vecs(SIFTSMALL / "siftsmall_query.fvecs", mmap=False), q)


@pytest.mark.parametrize("ext, dtype", [(".fvecs", np.float32), (".ivecs", np.int32), (".bvecs", np.uint8)])
def test_round_trip(tmp_path, ext, dtype):
    rng = np.random.default_rng(0)
    a = (rng.random((37, 5)) * 200).astype(dtype)
    p = write_vecs(tmp_path / f"x{ext}", a)
    b = read_vecs(p)
    assert b.dtype == dtype and np.array_equal(a, b)
    # byte layout: int32 dimension, then the values
    raw = p.read_bytes()
    rec = 4 + 5 * np.dtype(dtype).itemsize
    assert len(raw) == 37 * rec
    assert np.frombuffer(raw[rec:rec + 4], "<i4")[0] == 5
    assert np.array_equal(np.frombuffer(raw[rec + 4:2 * rec], dtype), a[1])
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_float32_chunks(tmp_path):
    a = np.arange(30 * 4).reshape(30, 4) % 256
    x = read_vecs(write_vecs(tmp_path / "b.bvecs", a))
    chunks = list(iter_float32(x, chunk_size=8))
    assert [i for i, _ in chunks] == [0, 8, 16, 24]
    assert all(c.dtype == np.float32 for _, c in chunks)
    assert np.array_equal(np.concatenate([c for _, c in chunks]), a.astype(np.float32))
    assert np.array_equal(to_float32(x, chunk_size=7), a.astype(np.float32))
    assert [len(c) for _, c in iter_float32(x, 8, start=5, stop=20)] == [8, 7]


def test_empty_file(tmp_path):
    p = tmp_path / "e.fvecs"
    p.write_bytes(b"")
    with pytest.raises(ValueError, match=r"e\.fvecs: empty file"):
        read_vecs(p)


def test_truncated_file(tmp_path):
    p = write_vecs(tmp_path / "t.fvecs", np.ones((3, 4), np.float32))
    p.write_bytes(p.read_bytes()[:-3])  # record 2 starts at 2 * 20 = 40 and lost 3 bytes
    with pytest.raises(ValueError, match=r"t\.fvecs: truncated file: record 2 at byte offset 40 has 17 of 20 bytes"):
        read_vecs(p)


def test_truncated_header(tmp_path):
    p = tmp_path / "h.ivecs"
    p.write_bytes(b"\x04\x00")
    with pytest.raises(ValueError, match=r"h\.ivecs: truncated file: record 0 at byte offset 0"):
        read_vecs(p)


def test_record_with_other_dimension(tmp_path):
    p = write_vecs(tmp_path / "d.bvecs", np.zeros((5, 4), np.uint8))
    raw = bytearray(p.read_bytes())
    raw[3 * 8:3 * 8 + 4] = np.int32(7).tobytes()  # record 3 (8 bytes each) claims d = 7
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"d\.bvecs: record 3 at byte offset 24 has dimension 7, but record 0 has dimension 4"):
        read_vecs(p)


def test_other_dimension_reported_before_truncation(tmp_path):
    # a record with a different dimension also breaks the size arithmetic: name the record
    p = tmp_path / "m.fvecs"
    rec = lambda d: np.int32(d).tobytes() + np.zeros(d, np.float32).tobytes()  # noqa: E731
    p.write_bytes(rec(2) + rec(2) + rec(2) + rec(3) + rec(2))
    with pytest.raises(ValueError, match=r"record 3 at byte offset 36 has dimension 3"):
        read_vecs(p)


def test_garbage_dimension(tmp_path):
    p = tmp_path / "g.fvecs"
    p.write_bytes(np.float32(1.5).tobytes() * 8)  # not an int32 dimension
    with pytest.raises(ValueError, match=r"g\.fvecs: record 0 at byte offset 0 has invalid dimension"):
        read_vecs(p)


def test_wrong_extension(tmp_path):
    p = tmp_path / "x.npy"
    p.write_bytes(b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(ValueError, match=r"x\.npy: unsupported extension '\.npy'"):
        read_vecs(p)
    with pytest.raises(ValueError, match="unsupported extension"):
        write_vecs(tmp_path / "y.txt", np.zeros((1, 1)))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fvecs"):
        read_vecs(tmp_path / "nope.fvecs")


def test_write_rejects_values_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError, match=r"do not fit \.bvecs"):
        write_vecs(tmp_path / "a.bvecs", np.array([[0, 256]]))
    with pytest.raises(ValueError, match="non-integer"):
        write_vecs(tmp_path / "a.ivecs", np.array([[0.5]]))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        write_vecs(tmp_path / "a.fvecs", np.zeros(3))
    assert not list(tmp_path.iterdir())
