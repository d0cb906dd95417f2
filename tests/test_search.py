"""Exact chunked k-NN and recall@T: a hand-checked example and brute-force agreement."""

import numpy as np
import pytest
from ann_data import brute_force_knn

from vqbench.ann.search import DEFAULT_TS, knn, recall_at, recall_ts


def test_recall_hand_checked():
    # 4 queries, true neighbours 7, 3, 5, 9; results nearest first
    ids = np.array([
        [7, 1, 2, 4],   # rank 0
        [1, 3, 2, 4],   # rank 1
        [1, 2, 4, 5],   # rank 3
        [1, 2, 4, 6],   # absent
    ])
    gt = np.array([[7, 0], [3, 0], [5, 0], [9, 0]])
    r = recall_at(ids, gt, ts=(1, 2, 4))
    assert r == {1: 0.25, 2: 0.5, 4: 0.75}
    assert recall_at(ids, gt[:, 0], ts=(3,)) == {3: 0.5}  # 1-D ground truth works too


def test_recall_requires_enough_results():
    with pytest.raises(ValueError, match="recall@8 needs at least 8 results per query, got 4"):
        recall_at(np.zeros((2, 4), int), np.zeros((2, 1), int), ts=(1, 8))
    with pytest.raises(ValueError, match="does not match ground truth"):
        recall_at(np.zeros((2, 4), int), np.zeros((3, 1), int))


def test_recall_ts():
    assert recall_ts() == [1, 2, 4, 8, 10, 16, 32, 64, 100, 128, 256, 512, 1000, 10000]
    assert recall_ts(100) == [1, 2, 4, 8, 10, 16, 32, 64, 100]
    assert set(DEFAULT_TS) == set(recall_ts())


def test_knn_on_hand_example():
    xb = np.array([[0, 0], [10, 0], [0, 3], [5, 5], [1, 1]], np.float32)
    xq = np.array([[0, 0], [9, 1]], np.float32)
    D, I = knn(xq, [xb[:2], xb[2:4], xb[4:]], k=3)  # chunks of 2, 2, 1
    assert I.tolist() == [[0, 4, 2], [1, 3, 4]]
    assert D.tolist() == [[0, 2, 9], [2, 32, 64]]


@pytest.mark.parametrize("chunk", [1000, 97, 7])
def test_knn_matches_brute_force(chunk):
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(1000, 24)).astype(np.float32)
    xq = rng.normal(size=(40, 24)).astype(np.float32)
    D, I = knn(xq, (xb[i:i + chunk] for i in range(0, 1000, chunk)), k=50)
    assert I.dtype == np.int64 and I.shape == (40, 50)
    assert np.array_equal(I, brute_force_knn(xq, xb, 50))
    expected = ((xq[:, None, :] - xb[I]) ** 2).sum(-1)
    np.testing.assert_allclose(D, expected, rtol=1e-4, atol=1e-3)


def test_knn_with_fewer_base_vectors_than_k():
    xb = np.eye(3, dtype=np.float32)
    D, I = knn(np.zeros((1, 3), np.float32), [xb], k=5)
    assert sorted(I[0, :3].tolist()) == [0, 1, 2] and I[0, 3:].tolist() == [-1, -1]
    assert np.isinf(D[0, 3:]).all()


def test_knn_rejects_mismatched_chunks():
    with pytest.raises(ValueError, match=r"base chunk at row 2 has shape \(2, 4\), expected \(\*, 3\)"):
        knn(np.zeros((1, 3), np.float32), [np.zeros((2, 3)), np.zeros((2, 4))], k=1)
