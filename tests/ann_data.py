"""Small generated ANN datasets for the tests (TEXMEX layout and ann-benchmarks HDF5)."""

from pathlib import Path

import numpy as np

from vqbench.data.vecs import write_vecs


def brute_force_knn(xq: np.ndarray, xb: np.ndarray, k: int) -> np.ndarray:
    """Exact k-NN ids by numpy (float64), nearest first; ties broken by id."""
    d = (xq.astype(np.float64) ** 2).sum(1)[:, None] - 2 * xq.astype(np.float64) @ xb.T.astype(np.float64) \
        + (xb.astype(np.float64) ** 2).sum(1)[None, :]
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def make_vectors(n: int, d: int, seed: int, integer: bool = False) -> np.ndarray:
    """Clustered non-negative data, SIFT-like in spirit (so quantizers have structure to find)."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(1234).random((16, d)) * 120
    x = centers[rng.integers(0, 16, n)] + rng.normal(0, 15, (n, d))
    x = np.clip(x, 0, 255)
    return np.round(x).astype(np.uint8) if integer else x.astype(np.float32)


def make_texmex(root: Path, prefix: str = "sift", nb: int = 2000, nq: int = 50, nt: int = 1000,
                d: int = 16, ext: str = ".fvecs", k: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Write {prefix}_{base,learn,query}{ext} and {prefix}_groundtruth.ivecs under root."""
    root = Path(root)
    integer = ext == ".bvecs"
    xb = make_vectors(nb, d, seed, integer)
    xt = make_vectors(nt, d, seed + 1, integer)
    xq = make_vectors(nq, d, seed + 2, integer)
    gt = brute_force_knn(xq, xb, min(k, nb)).astype(np.int32)
    write_vecs(root / f"{prefix}_base{ext}", xb)
    write_vecs(root / f"{prefix}_learn{ext}", xt)
    write_vecs(root / f"{prefix}_query{ext}", xq)
    write_vecs(root / f"{prefix}_groundtruth.ivecs", gt)
    return {"base": xb, "learn": xt, "query": xq, "groundtruth": gt}


def make_hdf5(path: Path, nb: int = 1500, nq: int = 20, d: int = 8, k: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    import h5py

    xb = make_vectors(nb, d, seed)
    xq = make_vectors(nq, d, seed + 2)
    gt = brute_force_knn(xq, xb, k).astype(np.int32)
    with h5py.File(path, "w") as f:
        f["train"], f["test"], f["neighbors"] = xb, xq, gt
        f.attrs["distance"] = "euclidean"
    return {"train": xb, "test": xq, "neighbors": gt}
