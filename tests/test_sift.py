"""SIFT1M-style datasets: TEXMEX layout detection, genuine siftsmall files, cut bases with
exactly recomputed ground truth, the ann-benchmarks HDF5 layout, and missing-data messages."""

from pathlib import Path

import numpy as np
import pytest
from ann_data import brute_force_knn, make_hdf5, make_texmex, make_vectors

from vqbench.data.sift import AnnBenchmarksHDF5, DatasetNotFound, TexmexDataset, data_home, load_dataset
from vqbench.data.vecs import read_vecs, write_vecs
from vqbench.run.schema import option_defaults

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIFTSMALL = SHARED / "siftsmall-genuine"
SIFTLIKE = SHARED / "siftlike1m"


@pytest.mark.skipif(not SIFTSMALL.is_dir(), reason=f"{SIFTSMALL} not available")
def test_genuine_siftsmall_in_texmex_layout(tmp_path):
    # genuine queries and ground truth (fvecs/ivecs) next to a generated bvecs base and learn set
    (tmp_path / "siftsmall_query.fvecs").symlink_to(SIFTSMALL / "siftsmall_query.fvecs")
    (tmp_path / "siftsmall_groundtruth.ivecs").symlink_to(SIFTSMALL / "siftsmall_groundtruth.ivecs")
    write_vecs(tmp_path / "siftsmall_base.bvecs", make_vectors(10_000, 128, 0, integer=True))
    write_vecs(tmp_path / "siftsmall_learn.bvecs", make_vectors(500, 128, 1, integer=True))
    ds = TexmexDataset(tmp_path, "siftsmall")
    assert ds.paths["query"].suffix == ".fvecs" and ds.paths["base"].suffix == ".bvecs"
    assert (ds.dim, ds.nb, ds.nq) == (128, 10_000, 100)
    q = ds.get_queries()
    assert q.shape == (100, 128) and q.dtype == np.float32
    gt = ds.get_groundtruth(3)
    assert gt.dtype == np.int64 and gt[0].tolist() == [2176, 3752, 882]
    assert not ds.gt_recomputed
    assert ds.get_train().shape == (500, 128) and ds.get_train(100).dtype == np.float32


def test_texmex_fvecs_layout(tmp_path):
    data = make_texmex(tmp_path, nb=700, nq=20, nt=300, d=16)
    ds = TexmexDataset(tmp_path, "sift")
    assert (ds.dim, ds.nb, ds.nq, ds.nb_total) == (16, 700, 20, 700)
    chunks = list(ds.database_iterator(256))
    assert [len(c) for c in chunks] == [256, 256, 188] and chunks[0].dtype == np.float32
    assert np.array_equal(np.concatenate(chunks), data["base"])
    assert np.array_equal(ds.get_database(), data["base"])
    assert np.array_equal(ds.get_train(), data["learn"])
    assert np.array_equal(ds.get_groundtruth(), data["groundtruth"])


def test_cut_base_recomputes_ground_truth(tmp_path):
    data = make_texmex(tmp_path, nb=1000, nq=30, nt=200, d=12)
    ds = TexmexDataset(tmp_path, "sift", max_base=400)
    assert ds.nb == 400 and ds.base_is_cut
    gt = ds.get_groundtruth()
    assert ds.gt_recomputed and ds.describe()["gt_recomputed"]
    expected = brute_force_knn(data["query"], data["base"][:400], 100)
    assert np.array_equal(gt, expected)
    assert gt.max() < 400
    # the uncut ground truth differs: ids beyond the cut were the true neighbours of some queries
    assert (data["groundtruth"][:, 0] >= 400).any()


def test_cut_queries_only_keeps_file_ground_truth(tmp_path):
    data = make_texmex(tmp_path, nb=300, nq=30, nt=100, d=8, ext=".bvecs")
    ds = TexmexDataset(tmp_path, "sift", max_queries=7, max_train=50)
    assert ds.get_queries().shape == (7, 8)
    assert np.array_equal(ds.get_groundtruth(), data["groundtruth"][:7])
    assert not ds.gt_recomputed
    assert np.array_equal(ds.get_train(), data["learn"][:50].astype(np.float32))


@pytest.mark.skipif(not SIFTLIKE.is_dir(), reason=f"{SIFTLIKE} not available")
def test_siftlike1m_cut_base_matches_file_ground_truth():
    ds = TexmexDataset(SIFTLIKE, "siftlike", max_base=50_000, max_queries=200)
    assert (ds.nb, ds.nq, ds.nb_total) == (50_000, 200, 1_000_000)
    new = ds.get_groundtruth()[:, 0]
    full = read_vecs(SIFTLIKE / "siftlike_groundtruth.ivecs")[:200, 0]
    inside = full < 50_000
    assert inside.sum() > 0
    q = ds.get_queries()[inside]

    def dist(ids):
        return ((q - ds.xb[ids].astype(np.float32)) ** 2).sum(1)

    # where the true neighbour lies inside the cut, the recomputed one is at the same distance
    # (equal ids up to exact ties between duplicate descriptors)
    assert np.array_equal(dist(new[inside]), dist(full[inside]))
    assert np.all(new < 50_000)


def test_missing_data_messages(tmp_path):
    with pytest.raises(DatasetNotFound) as err:
        TexmexDataset(tmp_path / "nowhere", "sift")
    msg = str(err.value)
    assert "\n" not in msg and "does not exist" in msg
    assert "vqbench-data download sift1m" in msg and "dataset.root=" in msg

    make_texmex(tmp_path, nb=50, nq=5, nt=50, d=4)
    (tmp_path / "sift_groundtruth.ivecs").unlink()
    with pytest.raises(DatasetNotFound, match=r"missing sift_groundtruth\.ivecs in .*: run `vqbench-data download sift1m"):
        TexmexDataset(tmp_path, "sift")
    (tmp_path / "sift_learn.fvecs").unlink()
    with pytest.raises(DatasetNotFound, match=r"missing sift_learn\.fvecs \(or \.bvecs\)"):
        TexmexDataset(tmp_path, "sift")
    with pytest.raises(DatasetNotFound, match=r"missing other_base\.fvecs .*check dataset\.prefix"):
        TexmexDataset(tmp_path, "other")


def test_split_dimension_mismatch(tmp_path):
    make_texmex(tmp_path, nb=50, nq=5, nt=50, d=4)
    write_vecs(tmp_path / "sift_query.fvecs", np.zeros((5, 6), np.float32))
    with pytest.raises(ValueError, match=r"sift_query\.fvecs: dimension 6 differs from the base's 4"):
        TexmexDataset(tmp_path, "sift")


def test_bad_limits(tmp_path):
    make_texmex(tmp_path, nb=50, nq=5, nt=50, d=4)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="dataset.max_base must be (an integer|>= 1)"):
            TexmexDataset(tmp_path, "sift", max_base=bad)


def test_hdf5_layout(tmp_path):
    data = make_hdf5(tmp_path / "s.hdf5", nb=1500, nq=20, d=8)
    ds = AnnBenchmarksHDF5(tmp_path / "s.hdf5", train_size=300, seed=3)
    assert (ds.dim, ds.nb, ds.nq) == (8, 1500, 20)
    xt = ds.get_train()
    assert xt.shape == (300, 8) and xt.dtype == np.float32
    # a seeded sample of distinct base rows, the same for the same seed
    rows = {r.tobytes() for r in data["train"]}
    assert all(r.tobytes() in rows for r in xt) and len({r.tobytes() for r in xt}) == 300
    assert np.array_equal(xt, AnnBenchmarksHDF5(tmp_path / "s.hdf5", train_size=300, seed=3).get_train())
    assert not np.array_equal(xt, AnnBenchmarksHDF5(tmp_path / "s.hdf5", train_size=300, seed=4).get_train())
    assert np.array_equal(np.concatenate(list(ds.database_iterator(600))), data["train"])
    assert np.array_equal(ds.get_groundtruth(), data["neighbors"])
    cut = AnnBenchmarksHDF5(tmp_path / "s.hdf5", train_size=100_000, seed=0, max_base=500, max_queries=10)
    assert np.array_equal(cut.get_groundtruth(), brute_force_knn(data["test"][:10], data["train"][:500], 100))
    assert cut.gt_recomputed and cut.get_train().shape == (500, 8)  # sample capped by the cut base


def test_hdf5_errors(tmp_path):
    with pytest.raises(DatasetNotFound, match="vqbench-data download sift1m_hdf5"):
        AnnBenchmarksHDF5(tmp_path / "missing.hdf5", train_size=100_000, seed=0)
    import h5py
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f["train"] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"bad\.hdf5: no dataset 'test'"):
        AnnBenchmarksHDF5(tmp_path / "bad.hdf5", train_size=100_000, seed=0)
    (tmp_path / "junk.hdf5").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        AnnBenchmarksHDF5(tmp_path / "junk.hdf5", train_size=100_000, seed=0)


def test_load_dataset_from_config(tmp_path, monkeypatch):
    make_texmex(tmp_path / "t", prefix="abc", nb=60, nq=5, nt=40, d=4)
    ds = load_dataset(option_defaults("dataset", "sift1m", root=str(tmp_path / "t"), prefix="abc", max_base=30), seed=0)
    assert isinstance(ds, TexmexDataset) and ds.nb == 30
    (tmp_path / "h").mkdir()
    make_hdf5(tmp_path / "h" / "x.hdf5", nb=100, nq=4, d=4)
    ds = load_dataset(option_defaults("dataset", "sift1m_hdf5", root=str(tmp_path / "h"), file="x.hdf5",
                                      train_size=10), seed=1)
    assert isinstance(ds, AnnBenchmarksHDF5) and ds.get_train().shape == (10, 4) and ds.seed == 1
    with pytest.raises(ValueError, match="dataset.name must be sift1m or sift1m_hdf5"):
        load_dataset(option_defaults("dataset", "cifar10"), seed=0)
    monkeypatch.setenv("VQBENCH_DATA", str(tmp_path / "cache"))
    assert data_home() == tmp_path / "cache"
    with pytest.raises(DatasetNotFound, match=str(tmp_path / "cache" / "sift1m")):
        load_dataset(option_defaults("dataset", "sift1m"), seed=0)
