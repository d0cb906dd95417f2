"""Downloads against a local HTTP server on 127.0.0.1: full, resumed, corrupt, offline;
safe archive extraction; and the `vqbench-data download` command end to end."""

import email.utils
import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest
from ann_data import make_hdf5, make_texmex

from vqbench.data import cli as data_cli
from vqbench.data.download import DownloadError, download, extract
from vqbench.data.sift import AnnBenchmarksHDF5, TexmexDataset


class Server:
    """Serves `files` {path: bytes} with a strong ETag and a Last-Modified per version.

    Honours Range and If-Range unless `ignore_range` / `ignore_if_range`; `validators=False`
    sends neither header; can cut a response after `cut_after` bytes (sending the full
    Content-Length first), throttle to `bytes_per_s`, answer every request with
    `force_status` (e.g. 416), stall `stall_s` seconds after a cut, and run `before_request(server)` first (to change a file
    between requests)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.if_ranges: list[str | None] = []
        self.ignore_range = False
        self.ignore_if_range = False
        self.validators = True
        self.cut_after: int | None = None
        self.bytes_per_s: int | None = None
        self.force_status: int | None = None
        self.stall_s = 0.0  # after a cut, keep the connection open (silent) this long
        self.before_request = None
        self.versions: dict[str, int] = {}
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if srv.before_request is not None:
                    srv.before_request(srv)
                rng = self.headers.get("Range")
                srv.requests.append((self.path, rng))
                srv.if_ranges.append(self.headers.get("If-Range"))
                body = srv.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
                modified = email.utils.formatdate(1_600_000_000 + srv.versions.get(self.path, 0), usegmt=True)
                if srv.force_status is not None:
                    self.send_response(srv.force_status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if_range = self.headers.get("If-Range")
                range_ok = if_range is None or srv.ignore_if_range or if_range in (etag, modified)
                if rng and not srv.ignore_range and range_ok:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                if srv.validators:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", modified)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if srv.cut_after is not None:
                    part = part[:srv.cut_after]
                try:
                    if srv.bytes_per_s:
                        step = max(1, srv.bytes_per_s // 20)
                        for i in range(0, len(part), step):
                            self.wfile.write(part[i:i + step])
                            self.wfile.flush()
                            time.sleep(step / srv.bytes_per_s)
                    else:
                        self.wfile.write(part)
                    if srv.cut_after is not None and srv.stall_s:
                        self.wfile.flush()
                        time.sleep(srv.stall_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def change(self, path: str, body: bytes) -> None:
        """A new version of `path` (new ETag and Last-Modified)."""
        self.files[path] = body
        self.versions[path] = self.versions.get(path, 0) + 1

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MB, several read blocks


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_full_download_with_checksum(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()
    assert (tmp_path / "f.bin.sha256").read_text().split()[0] == sha(PAYLOAD)
    # present and verified: no second request
    n = len(server.requests)
    download(f"{server.url}/f.bin", dest, sha256=sha(PAYLOAD), progress=False)
    assert len(server.requests) == n


def test_md5(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_part_without_a_record_restarts_from_zero(server, tmp_path):
    # a .part with no saved validator (older vqbench, or copied in) cannot be proven a prefix
    server.files["/f.bin"] = PAYLOAD
    half = len(PAYLOAD) // 2
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:half])
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/f.bin", None)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "f.bin.sha256"]


def test_resume_after_interrupted_transfer(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_after = 300_000
    with pytest.raises(DownloadError, match=r"incomplete: got 300000 of \d+ bytes; run the same command again to resume"):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert (tmp_path / "f.bin.part").stat().st_size == 300_000
    assert not (tmp_path / "f.bin").exists()
    server.cut_after = None
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/f.bin", "bytes=300000-")
    assert server.if_ranges[-1] == f'"{sha(PAYLOAD)[:16]}"'  # resumed only if the remote is unchanged
    assert not (tmp_path / "f.bin.part.json").exists()


def test_complete_part_file_needs_no_request(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_after = len(PAYLOAD)  # served whole, then "cut": complete .part, no rename yet
    server.before_request = None
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    (tmp_path / "f.bin.part.json").write_text(json.dumps(
        {"url": f"{server.url}/f.bin", "etag": f'"{sha(PAYLOAD)[:16]}"', "last_modified": None,
         "length": len(PAYLOAD)}))
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD and server.requests == []


def test_server_without_range_support_restarts(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.ignore_range = True
    (tmp_path / "f.bin.part").write_bytes(b"garbage that must not be kept")
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_non_http_url_restarts_from_scratch(tmp_path):
    # urllib has no Range for ftp:// or file://: a stale .part is discarded, not appended to
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    (tmp_path / "out.bin.part").write_bytes(PAYLOAD[:1000])
    dest = download(src.as_uri(), tmp_path / "out.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_bad_checksum_leaves_nothing(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match=r"checksum mismatch for http://127\.0\.0\.1:\d+/f\.bin: expected sha256 0+, got"):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_recorded_sidecar_detects_a_changed_file(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)  # records the sha256
    dest.write_bytes(b"corrupted")
    download(f"{server.url}/f.bin", dest, progress=False)  # mismatch with the record: fetched again
    assert dest.read_bytes() == PAYLOAD
    server.files["/f.bin"] = b"the server now sends something else"
    dest.unlink()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{server.url}/f.bin", dest, progress=False)


def test_offline_message(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/sift.tar.gz"
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "sift.tar.gz", progress=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot download {url} (")
    assert "offline" in msg and str(tmp_path / "sift.tar.gz") in msg


def test_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/missing", tmp_path / "m", progress=False)


# ---------------------------------------------------------------- extraction

def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def test_extract_strips_leading_directory(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes([(tarfile.TarInfo("sift/a.txt"), b"A"), (tarfile.TarInfo("sift/sub/b.txt"), b"B")]))
    out = tmp_path / "out"
    moved = extract(archive, out, strip_components=1)
    assert sorted(p.name for p in moved) == ["a.txt", "sub"]
    assert (out / "a.txt").read_bytes() == b"A" and (out / "sub" / "b.txt").read_bytes() == b"B"
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "sub"]  # no temporary directory left


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"])
def test_extract_refuses_path_traversal(tmp_path, name):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(tar_bytes([(tarfile.TarInfo("fine.txt"), b"x"), (tarfile.TarInfo(name), b"evil")]))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="unsafe path; refusing to extract"):
        extract(archive, out)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_extract_refuses_links(tmp_path):
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tmp_path / "l.tar.gz"
    archive.write_bytes(tar_bytes([(link, None)]))
    with pytest.raises(ValueError, match="link or special file"):
        extract(archive, tmp_path / "out")


def test_extract_not_an_archive(tmp_path):
    p = tmp_path / "x.tar.gz"
    p.write_bytes(b"not a tar")
    with pytest.raises(ValueError, match=r"x.tar.gz: not a tar archive \(neither a plain tar nor gzip"):
        extract(p, tmp_path / "out")


# ---------------------------------------------------------------- vqbench-data

def sift_archive(tmp_path: Path) -> bytes:
    """A small sift.tar.gz laid out like the TEXMEX one (sift/sift_*.fvecs)."""
    src = tmp_path / "src"
    make_texmex(src, "sift", nb=300, nq=10, nt=200, d=8)
    members = [(tarfile.TarInfo(f"sift/{p.name}"), p.read_bytes()) for p in sorted(src.iterdir())]
    return tar_bytes(members)


def test_download_sift1m_archive(server, tmp_path):
    body = sift_archive(tmp_path)
    server.files["/corpus/sift.tar.gz"] = body
    root = tmp_path / "data"
    data_cli.download_sift1m(root, url=f"{server.url}/corpus/sift.tar.gz", md5=hashlib.md5(body).hexdigest(),
                             progress=False)
    ds = TexmexDataset(root, "sift")
    assert (ds.dim, ds.nb, ds.nq) == (8, 300, 10)
    assert not (root / "sift.tar.gz").exists()  # archive removed after extraction


def test_download_sift1m_bad_md5(server, tmp_path, capsys):
    server.files["/sift.tar.gz"] = sift_archive(tmp_path)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        data_cli.download_sift1m(root, url=f"{server.url}/sift.tar.gz", md5="0" * 32, progress=False)
    assert not list(root.glob("sift_*"))


def test_cli_download_hdf5_and_info(server, tmp_path, capsys):
    make_hdf5(tmp_path / "gen.hdf5")
    server.files["/sift-128-euclidean.hdf5"] = (tmp_path / "gen.hdf5").read_bytes()
    root = tmp_path / "h"
    rc = data_cli.main(["download", "sift1m_hdf5", "--root", str(root), "--url",
                        f"{server.url}/sift-128-euclidean.hdf5", "--no-progress"])
    assert rc == 0
    assert "dataset=sift1m_hdf5 dataset.root=" in capsys.readouterr().out
    ds = AnnBenchmarksHDF5(root / "sift-128-euclidean.hdf5", train_size=100_000, seed=0)
    assert (ds.nb, ds.nq, ds.dim) == (1500, 20, 8)
    assert data_cli.main(["info", str(root)]) == 0
    assert "sift-128-euclidean.hdf5:train: 1500 x 8 float32" in capsys.readouterr().out


def test_cli_download_offline_is_one_line(tmp_path, capsys):
    rc = data_cli.main(["download", "sift1m", "--root", str(tmp_path / "d"), "--no-progress",
                        "--url", f"http://127.0.0.1:{closed_port()}/sift.tar.gz"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("vqbench-data: error: cannot download") and err.count("\n") == 1


# ---------------------------------------------------------------- bad input: what must never be kept

def test_first_download_that_is_not_hdf5_is_not_pinned(server, tmp_path, capsys):
    # no published checksum: a wrong first file (an HTML error page) must not become the record
    server.files["/sift-128-euclidean.hdf5"] = b"<html>rate limited</html>"
    root = tmp_path / "h"
    args = ["download", "sift1m_hdf5", "--root", str(root), "--url", f"{server.url}/sift-128-euclidean.hdf5",
            "--no-progress"]
    assert data_cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not give a usable file" in err and "not a readable HDF5 file" in err
    assert sorted(p.name for p in root.iterdir()) == []  # no file, no .part, no .sha256 pin
    make_hdf5(tmp_path / "gen.hdf5")
    server.change("/sift-128-euclidean.hdf5", (tmp_path / "gen.hdf5").read_bytes())
    assert data_cli.main(args) == 0  # running again helps, as the message says
    assert AnnBenchmarksHDF5(root / "sift-128-euclidean.hdf5", train_size=100_000, seed=0).nb == 1500


def test_a_pinned_invalid_file_from_an_older_version_is_recovered(server, tmp_path):
    # what the old code left: a non-HDF5 file pinned by its sha256 record
    root = tmp_path / "h"
    root.mkdir()
    junk = b"not an hdf5 file"
    (root / "sift-128-euclidean.hdf5").write_bytes(junk)
    (root / "sift-128-euclidean.hdf5.sha256").write_text(f"{sha(junk)}  sift-128-euclidean.hdf5\n")
    make_hdf5(tmp_path / "gen.hdf5")
    good = (tmp_path / "gen.hdf5").read_bytes()
    server.files["/s.hdf5"] = good
    data_cli.download_sift1m_hdf5(root, url=f"{server.url}/s.hdf5", progress=False)
    assert (root / "sift-128-euclidean.hdf5").read_bytes() == good
    assert (root / "sift-128-euclidean.hdf5.sha256").read_text().split()[0] == sha(good)


def test_stale_larger_part_answered_416_restarts_from_zero(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    stale = PAYLOAD + b"x" * 5000  # an older, longer version of the file
    (tmp_path / "f.bin.part").write_bytes(stale)
    (tmp_path / "f.bin.part.json").write_text(json.dumps(
        {"url": f"{server.url}/f.bin", "etag": f'"{sha(PAYLOAD)[:16]}"', "last_modified": None, "length": None}))
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD  # not the stale bytes taken as complete
    assert server.requests == [("/f.bin", f"bytes={len(stale)}-"), ("/f.bin", None)]


def test_remote_changed_between_cut_and_resume_is_not_spliced(server, tmp_path):
    old, new = PAYLOAD, bytes(reversed(PAYLOAD))
    server.files["/f.bin"] = old
    server.cut_after = 400_000
    with pytest.raises(DownloadError, match="resume"):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    server.cut_after = None
    server.change("/f.bin", new)  # new ETag and Last-Modified: If-Range fails, the server sends it whole
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == new
    assert server.requests[-1] == ("/f.bin", "bytes=400000-") and len(server.requests) == 2


def test_server_ignoring_if_range_is_caught_by_the_saved_validator(server, tmp_path):
    old, new = PAYLOAD, bytes(reversed(PAYLOAD))
    server.files["/f.bin"] = old
    server.cut_after = 400_000
    with pytest.raises(DownloadError):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    server.cut_after = None
    server.ignore_if_range = True  # answers 206 of the new file to a range of the old one
    server.change("/f.bin", new)
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == new
    assert server.requests[1:] == [("/f.bin", "bytes=400000-"), ("/f.bin", None)]


def test_server_without_validators_is_never_resumed(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.validators = False
    server.cut_after = 300_000
    with pytest.raises(DownloadError):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    server.cut_after = None
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD and server.requests[-1] == ("/f.bin", None)


def test_throttled_server_times_out_then_resumes(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.bytes_per_s = 400_000  # slow, but each read gets data within the client's 0.3 s ...
    server.cut_after = 100_000  # ... until the connection falls silent
    server.stall_s = 1.0
    with pytest.raises(DownloadError, match=r"interrupted after \d+ bytes \(timed out\); run the same command again"):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False, timeout=0.3)
    have = (tmp_path / "f.bin.part").stat().st_size
    assert 0 < have <= 100_000 and not (tmp_path / "f.bin").exists()
    server.bytes_per_s = server.cut_after = None
    server.stall_s = 0.0
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD and server.requests[-1] == ("/f.bin", f"bytes={have}-")


def test_server_answering_416_to_everything(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.force_status = 416
    with pytest.raises(DownloadError, match=r"cannot download http://127\.0\.0\.1:\d+/f\.bin: the server refused"):
        download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_changed_remote_against_the_record_says_how_to_accept_it(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    dest.unlink()
    server.change("/f.bin", b"version 2" * 1000)
    with pytest.raises(DownloadError) as err:
        download(f"{server.url}/f.bin", dest, progress=False)
    sidecar = tmp_path / "f.bin.sha256"
    assert f"the remote file changed: if that is intended, delete {sidecar} and run the download again" in str(err.value)
    assert not dest.exists()
    sidecar.unlink()  # following the instruction works
    assert download(f"{server.url}/f.bin", dest, progress=False).read_bytes() == b"version 2" * 1000


def test_truncated_archive_from_a_mirror_is_not_kept(server, tmp_path):
    body = sift_archive(tmp_path)
    server.files["/sift.tar.gz"] = body[: len(body) // 2]  # a mirror with a broken copy, no md5
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="did not give a usable file .*not a complete tar archive"):
        data_cli.download_sift1m(root, url=f"{server.url}/sift.tar.gz", md5=None, progress=False)
    assert sorted(p.name for p in root.iterdir()) == []


def test_extract_truncated_archive_names_it(tmp_path):
    archive = tmp_path / "a.tar.gz"
    body = tar_bytes([(tarfile.TarInfo(f"d/{i}.bin"), bytes(range(256)) * 400) for i in range(4)])
    archive.write_bytes(body[: len(body) * 2 // 3])
    with pytest.raises(ValueError, match=f"{archive}: truncated or corrupt archive"):
        extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
