import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from vqbench.data.cifar import DatasetError, load_images
from vqbench.run.schema import option_defaults

CLASSES = ("cat", "dog")


def _write_tree(root, per_class=(3, 2), size=(8, 6)):
    """train/ and test/ with random PNG (lossless) images; returns the expected tensors."""
    expected = {}
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        imgs, labels = [], []
        for label, cls in enumerate(CLASSES):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
                Image.fromarray(a).save(root / split / cls / f"{i:04d}.png")
                imgs.append(torch.from_numpy(a).permute(2, 0, 1))
                labels.append(label)
        expected[split] = (torch.stack(imgs), torch.tensor(labels))
    return expected


def _cfg(root, cache, **kw):
    return option_defaults("dataset", "image_folder", root=str(root), cache_dir=str(cache), **kw)


def test_image_folder_loads_exact_pixels_and_labels(tmp_path):
    expected = _write_tree(tmp_path / "tree")
    s = load_images(_cfg(tmp_path / "tree", tmp_path / "cache"), seed=0)
    assert s.classes == CLASSES
    assert s.train.dtype == torch.uint8 and s.train.shape == (6, 3, 8, 6)
    assert torch.equal(s.train, expected["train"][0]) and torch.equal(s.train_labels, expected["train"][1])
    assert torch.equal(s.test, expected["test"][0]) and torch.equal(s.test_labels, expected["test"][1])
    # The decoded tensors were cached; a second load reads them back identically.
    assert len(list((tmp_path / "cache" / "decoded").glob("*.pt"))) == 1
    again = load_images(_cfg(tmp_path / "tree", tmp_path / "cache"), seed=0)
    assert torch.equal(again.train, s.train)


def test_tar_gz_is_extracted_once_into_cache(tmp_path):
    expected = _write_tree(tmp_path / "tree")
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "tree" / "train", arcname="train")
        tf.add(tmp_path / "tree" / "test", arcname="test")
    cache = tmp_path / "cache"
    s = load_images(_cfg(archive, cache), seed=0)
    assert torch.equal(s.train, expected["train"][0]) and torch.equal(s.test, expected["test"][0])
    extracted = list((cache / "extracted").iterdir())
    assert len(extracted) == 1 and extracted[0].name.startswith("imgs-")  # no temporary leftovers
    marker = extracted[0] / "train" / "cat" / "0000.png"
    mtime = marker.stat().st_mtime_ns
    load_images(_cfg(archive, cache), seed=0)
    assert marker.stat().st_mtime_ns == mtime  # reused, not extracted again


def test_jpeg_images_decode(tmp_path):
    d = tmp_path / "t"
    for split in ("train", "test"):
        (d / split / "a").mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), (200, 100, 50), dtype=np.uint8)).save(d / split / "a" / "x.jpg", quality=95)
    s = load_images(_cfg(d, tmp_path / "c"), seed=0)
    assert s.train.shape == (1, 3, 32, 32)
    assert (s.train[0, :, 16, 16].int() - torch.tensor([200, 100, 50])).abs().max() <= 3


def test_seeded_subsets(tmp_path):
    _write_tree(tmp_path / "tree", per_class=(10, 6))
    a = load_images(_cfg(tmp_path / "tree", tmp_path / "c", max_train=5, max_test=3), seed=7)
    b = load_images(_cfg(tmp_path / "tree", tmp_path / "c", max_train=5, max_test=3), seed=7)
    c = load_images(_cfg(tmp_path / "tree", tmp_path / "c", max_train=5, max_test=3), seed=8)
    assert a.train.shape[0] == 5 and a.test.shape[0] == 3
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train, c.train)
    full = load_images(_cfg(tmp_path / "tree", tmp_path / "c", max_train=1000), seed=7)
    assert full.train.shape[0] == 20


def test_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="dataset.root must name"):
        load_images(option_defaults("dataset", "image_folder", root=None, cache_dir=str(tmp_path)), seed=0)
    with pytest.raises(DatasetError, match="does not exist"):
        load_images(_cfg(tmp_path / "nope", tmp_path), seed=0)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="expected train/<class>"):
        load_images(_cfg(tmp_path / "flat", tmp_path), seed=0)
    with pytest.raises(DatasetError, match="dataset.download=false"):
        load_images(option_defaults("dataset", "cifar10", root=str(tmp_path / "empty"), download=False), seed=0)
    tree = tmp_path / "mixed"
    _write_tree(tree)
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(tree / "train" / "dog" / "9999.png")
    with pytest.raises(DatasetError, match="9999.png: image is 5x5"):
        load_images(_cfg(tree, tmp_path / "c2"), seed=0)


def test_cifar10_offline_fails_with_one_line(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from vqbench.data.download import DownloadError

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as err:
        load_images(option_defaults("dataset", "cifar10", root=str(tmp_path / "c10"), download=True,
                                    cache_dir=str(tmp_path / "cache")), seed=0)
    msg = str(err.value)
    assert "\n" not in msg and "cifar-10-python.tar.gz" in msg and "offline" in msg


def test_genuine_test_npz_loads_and_bad_files_are_named(tmp_path):
    from vqbench.data.cifar import load_genuine_test

    rng = np.random.default_rng(1)
    hwc = rng.integers(0, 256, size=(4, 5, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "ok.npz", test_images=hwc, test_labels=np.arange(4))
    got = load_genuine_test(tmp_path / "ok.npz")
    assert got.dtype == torch.uint8 and got.shape == (4, 3, 5, 6)
    assert torch.equal(got.permute(0, 2, 3, 1), torch.from_numpy(hwc))  # HWC -> CHW, same pixels
    np.savez(tmp_path / "nokey.npz", images=hwc)
    np.savez(tmp_path / "float.npz", test_images=hwc.astype(np.float32))
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    for name, message in [("absent.npz", "no such file"), ("nokey.npz", "no array 'test_images'"),
                          ("float.npz", "expected uint8"), ("garbage.npz", "not a readable .npz")]:
        with pytest.raises(DatasetError, match=message) as err:
            load_genuine_test(tmp_path / name)
        assert f"dataset.genuine_test={tmp_path / name}" in str(err.value)


def test_genuine_test_of_the_shared_cifar10_copy():
    """The 1,000 official test images with their original pixels (../shared, when present)."""
    from pathlib import Path

    from vqbench.data.cifar import load_genuine_test

    npz = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "cifar10-genuine-5k.npz"
    if not npz.is_file():
        pytest.skip(f"{npz} is not here")
    images = load_genuine_test(npz)
    assert images.shape == (1000, 3, 32, 32) and images.dtype == torch.uint8
    assert 100 < images.float().mean() < 150  # natural images, not zeros
