"""Download logic against a local HTTP server serving zips the tests build."""

import functools
import hashlib
import http.server
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from recsys.data import movielens as datasets
from recsys.data.movielens import REGISTRY, Dataset, download, resolve_data
from recsys.errors import RecsysError

RATINGS = "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,101\n2,10,5.0,102\n"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture()
def server(tmp_path):
    """An HTTP server on 127.0.0.1 (ephemeral port) serving tmp_path/www; yields its URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _zip(path: Path, folder: str, files: dict) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(f"{folder}/{name}", text)
    return path.read_bytes()


def _dataset(name, data: bytes, md5=None, size=None) -> Dataset:
    return Dataset(name, md5 if md5 is not None else hashlib.md5(data).hexdigest(),
                   len(data) if size is None else size, f"{name}/ratings.csv", "csv", 2, 2, 3)


def _cache_entries(cache: Path) -> list:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_verifies_unpacks_and_is_idempotent(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_PROGRESS", "1")  # a bar, though stderr is not a terminal
    url, root = server
    data = _zip(root / "ml-test.zip", "ml-test", {"ratings.csv": RATINGS, "README.txt": "x"})
    ds = _dataset("ml-test", data)
    cache = tmp_path / "cache"
    path = download(ds, mirror=url, cache=cache)
    assert path == cache / "ml-test" / "ratings.csv"
    assert path.read_text() == RATINGS
    assert (cache / "ml-test" / "README.txt").read_text() == "x"
    assert _cache_entries(cache) == ["ml-test"]  # no temporary file or folder left
    shown = capsys.readouterr().err
    assert "downloading ml-test:" in shown and f"/{len(data)}" in shown  # bytes of the total

    (root / "ml-test.zip").unlink()  # a second call must not touch the network
    assert download(ds, mirror=url, cache=cache) == path
    assert path.read_text() == RATINGS


def test_force_replaces_the_copy(server, tmp_path):
    url, root = server
    cache = tmp_path / "cache"
    data = _zip(root / "ml-test.zip", "ml-test", {"ratings.csv": RATINGS})
    download(_dataset("ml-test", data), mirror=url, cache=cache, progress=False)
    newer = RATINGS + "3,30,1.0,103\n"
    data = _zip(root / "ml-test.zip", "ml-test", {"ratings.csv": newer})
    path = download(_dataset("ml-test", data), mirror=url, cache=cache, force=True,
                    progress=False)
    assert path.read_text() == newer
    assert _cache_entries(cache) == ["ml-test"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, root = server
    cache = tmp_path / "cache"
    data = _zip(root / "ml-test.zip", "ml-test", {"ratings.csv": RATINGS})
    ds = _dataset("ml-test", data, md5="0" * 32)
    with pytest.raises(RecsysError, match="checksum mismatch"):
        download(ds, mirror=url, cache=cache, progress=False)
    assert _cache_entries(cache) == []


def test_registry_checksum_rejects_a_lookalike(server, tmp_path):
    """A zip that is not the official ml-100k fails the published size/MD5 check."""
    url, root = server
    cache = tmp_path / "cache"
    _zip(root / "ml-100k.zip", "ml-100k", {"u.data": "1\t1\t5\t0\n"})
    with pytest.raises(RecsysError, match="expected 4,924,029|checksum"):
        download("ml-100k", mirror=url, cache=cache, progress=False)
    assert _cache_entries(cache) == []
    with pytest.raises(RecsysError, match="not downloaded yet: run `recsys download ml-100k`"):
        resolve_data("ml-100k", cache=cache)


def test_zip_integrity_when_no_checksum(server, tmp_path):
    url, root = server
    cache = tmp_path / "cache"
    (root / "ml-test.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    ds = Dataset("ml-test", None, None, "ml-test/ratings.csv", "csv", 0, 0, 0)
    with pytest.raises(RecsysError, match="not a valid zip"):
        download(ds, mirror=url, cache=cache, progress=False)
    assert _cache_entries(cache) == []


def test_zip_without_the_ratings_file(server, tmp_path):
    url, root = server
    cache = tmp_path / "cache"
    data = _zip(root / "ml-test.zip", "ml-test", {"other.csv": RATINGS})
    with pytest.raises(RecsysError, match="has no ml-test/ratings.csv"):
        download(_dataset("ml-test", data), mirror=url, cache=cache, progress=False)
    assert _cache_entries(cache) == []


def test_server_404(server, tmp_path):
    url, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(RecsysError, match="answered 404"):
        download(_dataset("ml-test", b"x"), mirror=url, cache=cache, progress=False)
    assert _cache_entries(cache) == []


def test_connection_refused_says_no_network(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(RecsysError, match="no network: cannot reach"):
        download(_dataset("ml-test", b"x"), mirror=f"http://127.0.0.1:{port}", cache=cache,
                 progress=False)
    assert _cache_entries(cache) == []


def test_mirror_from_environment(server, tmp_path, monkeypatch):
    url, root = server
    data = _zip(root / "ml-test.zip", "ml-test", {"ratings.csv": RATINGS})
    monkeypatch.setenv("RECSYS_MIRROR", url)
    monkeypatch.setenv("RECSYS_DATA", str(tmp_path / "env-cache"))
    path = download(_dataset("ml-test", data), progress=False)
    assert path == tmp_path / "env-cache" / "ml-test" / "ratings.csv"


def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv("RECSYS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "recsys"
    monkeypatch.setenv("RECSYS_DATA", str(tmp_path / "mine"))
    assert datasets.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("RECSYS_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets.cache_dir() == Path.home() / ".cache" / "recsys"


def test_resolve_data(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "ml-1m").mkdir(parents=True)
    (cache / "ml-1m" / "ratings.dat").write_text("1::1::5::0\n")
    assert resolve_data("ml-1m", cache=cache) == str(cache / "ml-1m" / "ratings.dat")
    assert resolve_data("some/file.csv", cache=cache) == "some/file.csv"
    monkeypatch.chdir(tmp_path)
    Path("ml-20m").write_text("a file named like a release wins\n")
    assert resolve_data("ml-20m", cache=cache) == "ml-20m"


def test_registry_entries_are_consistent(monkeypatch):
    monkeypatch.delenv("RECSYS_MIRROR", raising=False)
    assert set(REGISTRY) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                             "ml-latest-small", "ml-latest"}
    for name, ds in REGISTRY.items():
        assert ds.url().endswith(f"/{name}.zip")
        assert ds.md5 is None or len(ds.md5) == 32
        assert (ds.md5 is None) == name.startswith("ml-latest")
        assert ds.ratings_file.endswith(("u.data", "ratings.dat", "ratings.csv"))
    assert REGISTRY["ml-10m"].folder == "ml-10M100K"
    assert REGISTRY["ml-100k"].url() == \
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
