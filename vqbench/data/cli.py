"""``vqbench-data``: fetch and inspect the ANN datasets.

    vqbench-data download sift1m [--root DIR]        TEXMEX sift.tar.gz -> DIR/sift_*.fvecs
    vqbench-data download sift1m_hdf5 [--root DIR]   ann-benchmarks sift-128-euclidean.hdf5
    vqbench-data info DIR                            shapes of the vector files in DIR

Exit status: 0 done; 1 the download failed (network, remote file: try again); 2 a bad
argument or local file (named in the one-line error).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vqbench.data import sift
from vqbench.data.archive import check_tar, extract
from vqbench.data.download import DownloadError, download
from vqbench.data.vecs import VALUE_DTYPES, read_vecs


def download_sift1m(root: Path, url: str = sift.TEXMEX_URL, md5: str | None = sift.TEXMEX_MD5,
                    progress: bool = True, keep_archive: bool = False) -> Path:
    """Download + extract the TEXMEX SIFT1M archive so that root/sift_base.fvecs exists."""
    check_root(root)
    archive = download(url, root / "sift.tar.gz", md5=md5, progress=progress, validate=check_tar)
    extract(archive, root, strip_components=1)  # the archive holds sift/sift_*.fvecs
    if not keep_archive:
        archive.unlink()
    sift.TexmexDataset(root, "sift")  # validates the extracted layout
    return root


def _check_hdf5(path: Path) -> None:
    """The ann-benchmarks layout (train/test/neighbors), or ValueError: before it is pinned."""
    sift.AnnBenchmarksHDF5(path, train_size=1, seed=0).h5.close()  # the layout only: no training sample drawn


def download_sift1m_hdf5(root: Path, url: str = sift.HDF5_URL, progress: bool = True) -> Path:
    check_root(root)
    return download(url, root / sift.HDF5_NAME, progress=progress, validate=_check_hdf5)


def check_root(root: Path) -> None:
    """--root must be (or become) a writable directory; ValueError names it otherwise."""
    if root.exists() and not root.is_dir():
        raise ValueError(f"--root {root} is a file, not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--root {root}: cannot create the directory ({e.strerror or e})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ValueError(f"--root {root} is not writable")


def info(directory: Path) -> tuple[list[str], list[str]]:
    """One line per vector file (or HDF5 dataset) under ``directory``, and one error line per
    file that cannot be read (every file is tried: one bad file does not hide the others)."""
    lines: list[str] = []
    errors: list[str] = []
    try:
        entries = sorted(directory.iterdir())
    except OSError as e:
        raise ValueError(f"{directory}: cannot list the directory ({e.strerror or e})") from None
    for p in entries:
        try:
            if p.suffix in VALUE_DTYPES:
                a = read_vecs(p)
                lines.append(f"{p.name}: {a.shape[0]} x {a.shape[1]} {a.dtype}")
            elif p.suffix in (".hdf5", ".h5"):
                lines.extend(_hdf5_info(p))
        except (ValueError, OSError) as e:
            errors.append(str(e))
    return lines, errors


def _hdf5_info(p: Path) -> list[str]:
    import h5py
    if p.is_dir():
        raise IsADirectoryError(f"{p}: is a directory, not an HDF5 file")
    try:
        with h5py.File(p, "r") as f:
            return [f"{p.name}:{k}: {' x '.join(map(str, getattr(v, 'shape', ())))} {getattr(v, 'dtype', 'group')}"
                    for k, v in f.items()]
    except OSError as e:
        raise ValueError(f"{p}: not a readable HDF5 file ({e})") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vqbench-data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="download a dataset into --root")
    d.add_argument("dataset", choices=["sift1m", "sift1m_hdf5"])
    d.add_argument("--root", type=Path, default=None,
                   help="target directory (default: $VQBENCH_DATA/<dataset> or ~/.cache/vqbench/<dataset>)")
    d.add_argument("--url", default=None, help="override the source URL (mirror)")
    d.add_argument("--no-progress", action="store_true")
    i = sub.add_parser("info", help="list the vector files in a directory")
    i.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "download":
            root = (args.root or sift.default_root(args.dataset)).expanduser()
            progress = not args.no_progress
            if args.dataset == "sift1m":
                kw = {"url": args.url} if args.url else {}  # a mirror must match the md5
                out = download_sift1m(root, progress=progress, **kw)
            else:
                kw = {"url": args.url} if args.url else {}
                out = download_sift1m_hdf5(root, progress=progress, **kw)
            print(f"{args.dataset} ready in {out}; use dataset={args.dataset} dataset.root={root}")
        else:
            if not args.dir.is_dir():
                raise FileNotFoundError(f"{args.dir}: not a directory")
            lines, errors = info(args.dir)
            for line in lines:
                print(line)
            for line in errors:
                print(f"vqbench-data: error: {line}", file=sys.stderr)
            if errors:
                return 2
    except DownloadError as e:  # the network or the remote file: retrying may help
        print(f"vqbench-data: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # a bad argument or local file: exit 2, like a usage error
        print(f"vqbench-data: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
