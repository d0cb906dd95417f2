"""faiss indexes built from our codebooks + codes search exactly like the decoded flat path,
survive a write/read round trip, and the ANN experiment can use and save them."""

import faiss
import numpy as np
import pytest
import torch
from ann_data import make_texmex
from test_ann import composed, small

from vqbench.ann.faiss_index import build_index, save_index, search
from vqbench.ann.search import knn, recall_at
from vqbench.quantizers import build_quantizer
from vqbench.run import cli


def assert_same_neighbours(D0, I0, D1, I1, rel=1e-4):
    """Equal distance lists and, per query, the same ids below the k-th distance (a tie group cut
    by k may hold any of its members; within a tie group the order is free)."""
    gap = rel * float(np.abs(D0).max())
    np.testing.assert_allclose(D1, D0, rtol=rel, atol=gap)
    compared = 0
    for d0, i0, d1, i1 in zip(D0, I0, D1, I1):
        inner = d0[-1] - gap
        assert set(i1[d1 < inner]) == set(i0[d0 < inner])
        compared += int((d0 < inner).sum())
    assert compared > 0.8 * D0.size  # the check is not vacuous


def trained(name, M, bits, d, x):
    torch.manual_seed(0)
    q = build_quantizer({"name": name, "num_codebooks": M, "bits_per_codebook": bits, "beam_width": 4}, d)
    q.codebooks.data = torch.randn_like(q.codebooks) * (0.6 if name in ("rvq", "avq") else 1.0)
    return q, q.encode(torch.from_numpy(x)).numpy()


CASES = [("vq", 1, 12), ("pvq", 4, 8), ("pvq", 2, 5), ("rvq", 3, 8), ("rvq", 2, 5), ("avq", 3, 4)]


@pytest.mark.parametrize("name,M,bits", CASES)
def test_index_search_equals_decoded_flat_search(name, M, bits, tmp_path):
    rng = np.random.default_rng(1)
    d = 16
    xb = rng.standard_normal((4000, d)).astype(np.float32)
    xq = rng.standard_normal((60, d)).astype(np.float32)
    q, codes = trained(name, M, bits, d, xb)
    decoded = q.decode(torch.from_numpy(codes)).detach().numpy()
    D0, I0 = knn(xq, [decoded[:1500], decoded[1500:]], 50)

    index = build_index(q, codes)
    assert index.ntotal == len(xb) and index.d == d
    np.testing.assert_allclose(index.reconstruct_n(0, len(xb)), decoded, atol=1e-5)
    D1, I1 = search(index, xq, 50)
    assert_same_neighbours(D0, I0, D1, I1)

    # write atomically, read back: same search results and the same type of index
    path = save_index(index, tmp_path / "index.faiss")
    assert [p.name for p in tmp_path.iterdir()] == ["index.faiss"]  # no temporary left behind
    loaded = faiss.read_index(str(path))
    assert type(loaded) is type(index) or isinstance(loaded, type(index))
    D2, I2 = search(loaded, xq, 50)
    np.testing.assert_array_equal(I2, I1)
    np.testing.assert_array_equal(D2, D1)


@pytest.mark.parametrize("name,M,bits", [("pvq", 4, 4), ("rvq", 3, 4), ("vq", 1, 5)])
def test_vectors_added_later_are_encoded_like_ours(name, M, bits):
    """PQ's nearest centroids are PVQ/VQ codes and RQ's greedy search (beam 1) is RVQ's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    q, codes = trained(name, M, bits, 16, x)
    ours = build_index(q, codes).reconstruct_n(0, len(x))  # depends on the code indices only
    index = build_index(q)
    index.add(x)
    np.testing.assert_array_equal(index.reconstruct_n(0, len(x)), ours)
    loaded = faiss.deserialize_index(faiss.serialize_index(build_index(q)))  # as read from a file
    loaded.add(x)
    np.testing.assert_array_equal(loaded.reconstruct_n(0, len(x)), ours)


def test_codes_of_the_wrong_shape_are_rejected():
    q = build_quantizer({"name": "rvq", "num_codebooks": 2, "bits_per_codebook": 4}, 8)
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 2\)"):
        build_index(q, np.zeros((5, 3), dtype=np.int64))


def test_saved_index_has_the_permissions_of_a_plain_file(tmp_path):
    """index.faiss goes through common/atomic.py: 0666 less the umask (0644 under 022), not mkstemp's 0600."""
    import os

    q = build_quantizer({"name": "pvq", "num_codebooks": 2, "bits_per_codebook": 4}, 8)
    codes = q.encode(torch.randn(50, 8)).numpy()
    old = os.umask(0o022)
    try:
        path = save_index(build_index(q, codes), tmp_path / "index.faiss")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["index.faiss"]


def test_each_quantizer_declares_its_export_and_an_undeclared_one_is_refused():
    from vqbench.common.checks import ConfigError
    from vqbench.quantizers import QUANTIZERS, RVQ

    assert {name: cls.faiss_export for name, cls in QUANTIZERS.items()} == {
        "vq": "pq", "pvq": "pq", "rvq": "residual", "avq": "residual", "fsq": None}

    class NoExport(RVQ):  # e.g. a new quantizer whose codes faiss cannot hold
        name = "noexport"
        faiss_export = None

    q = NoExport(8, 2, 4)
    with pytest.raises(ConfigError, match=r"quantizer 'noexport' cannot be exported as a faiss index.*faiss_export = None"):
        build_index(q, q.encode(torch.randn(20, 8)).numpy())


@pytest.fixture(scope="module")
def texmex(tmp_path_factory):
    root = tmp_path_factory.mktemp("texmex")
    make_texmex(root, prefix="sift", nb=2000, nq=50, nt=1500, d=16)
    return root


@pytest.mark.parametrize("quantizer", ["pvq", "avq"])
def test_ann_faiss_search_equals_flat_and_saved_index_round_trips(texmex, tmp_path, quantizer):
    runs = {}
    for search_kind in ("flat", "faiss"):
        cfg = composed("experiment=ann", f"quantizer={quantizer}", "optimizer=nsvq", "quantizer.beam_width=4",
                       f"experiment.search={search_kind}", "experiment.save_index=true", *small(texmex))
        runs[search_kind] = (cli.run(cfg, tmp_path / search_kind), tmp_path / search_kind)
    flat, faiss_run = runs["flat"][0]["metrics"], runs["faiss"][0]["metrics"]
    recalls = [k for k in flat if k.startswith("recall@")]
    assert len(recalls) >= 10
    for key in recalls:  # same training (seeded), same codes: the same recall
        assert faiss_run[key] == pytest.approx(flat[key], abs=1.5 / 50), key
    assert "index" in runs["faiss"][0]["timings"] and "save_index" in runs["faiss"][0]["timings"]

    # the saved index holds the base: faiss alone reproduces the run's recall
    from vqbench.data.sift import TexmexDataset
    ds = TexmexDataset(texmex, "sift")
    index = faiss.read_index(str(runs["faiss"][1] / "index.faiss"))
    assert index.ntotal == 2000
    _, ids = index.search(ds.get_queries(), 1000)
    rec = recall_at(ids, ds.get_groundtruth(), (1, 10, 100))
    for t, r in rec.items():
        assert r == pytest.approx(faiss_run[f"recall@{t}"], abs=1e-12)


def test_ann_search_option_is_checked(texmex, tmp_path):
    """experiment.search is an enum of the schema: a wrong value stops while composing."""
    from hydra.errors import ConfigCompositionException

    from vqbench.run.config import composition_error_line
    with pytest.raises(ConfigCompositionException) as err:
        composed("experiment=ann", "quantizer=pvq", "experiment.search=ivf", *small(texmex))
    line = composition_error_line(err.value)
    assert line.startswith("experiment.search: ") and "ivf" in line and "flat" in line and "faiss" in line, line


def test_ann_preset_search_defaults():
    e = composed("experiment=ann").experiment
    assert e.search == "flat" and e.save_index is False
