"""Downloads of the real MNIST files from a loopback HTTP server.

The server (127.0.0.1, a free port) serves ``shared/data/mnist`` under
``/mnist/``, the same files with one byte flipped under ``/corrupt/``, and
404 for everything else. Every request is recorded.
"""

import dataclasses
import http.server
import os
import threading
import urllib.parse

import pytest

from model_garden import datasets
from model_garden.datasets.download import DownloadError, RemoteFile, download, sha256_of

PRESENT = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz")


class _Server:
    def __init__(self, folder):
        self.folder = folder
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path = urllib.parse.urlparse(self.path).path
                server.requests.append(path)
                top, _, name = path.lstrip("/").partition("/")
                local = os.path.join(server.folder, name)
                if top not in ("mnist", "corrupt") or "/" in name or not os.path.isfile(local):
                    self.send_error(404)
                    return
                with open(local, "rb") as f:
                    body = bytearray(f.read())
                if top == "corrupt":
                    body[len(body) // 2] ^= 0x01
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(bytes(body))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(mnist_dir):
    s = _Server(mnist_dir)
    yield s
    s.close()


@pytest.fixture(scope="module")
def registry_files():
    return {f.filename: f for f in datasets.get_dataset("mnist").files}


def _remote(registry_files, name, *urls):
    return RemoteFile(name, registry_files[name].sha256, urls)


def test_registry_sha256_matches_real_files(registry_files, mnist_dir):
    assert sorted(registry_files) == sorted(PRESENT + ("train-images-idx3-ubyte.gz",))
    for name in PRESENT:
        assert registry_files[name].sha256 == sha256_of(os.path.join(mnist_dir, name))
    # PROVENANCE.md's published checksums, independently
    assert registry_files["t10k-images-idx3-ubyte.gz"].sha256 == (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6")


def test_download_and_cache(server, registry_files, mnist_dir, tmp_path):
    cache = str(tmp_path / "cache")
    for name in PRESENT:
        got = download(_remote(registry_files, name, server.base + "mnist/"), cache)
        assert got == os.path.join(cache, name)
        with open(got, "rb") as a, open(os.path.join(mnist_dir, name), "rb") as b:
            assert a.read() == b.read()
    assert server.requests == [f"/mnist/{n}" for n in PRESENT]
    assert sorted(os.listdir(cache)) == sorted(PRESENT)  # no temp files left
    for name in PRESENT:  # cached: no second request
        download(_remote(registry_files, name, server.base + "mnist/"), cache)
    assert len(server.requests) == len(PRESENT)


def test_404_falls_back_to_mirror(server, registry_files, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    remote = _remote(registry_files, name, server.base + "gone/", server.base + "mnist/")
    got = download(remote, str(tmp_path))
    assert sha256_of(got) == remote.sha256
    assert server.requests == [f"/gone/{name}", f"/mnist/{name}"]
    assert os.listdir(tmp_path) == [name]


def test_corrupted_download_rejected_and_leaves_nothing(server, registry_files, tmp_path):
    name = "train-labels-idx1-ubyte.gz"
    cache = tmp_path / "cache"
    remote = _remote(registry_files, name, server.base + "corrupt/", server.base + "missing/")
    with pytest.raises(DownloadError) as e:
        download(remote, str(cache))
    msg = str(e.value)
    assert f"{server.base}corrupt/{name}: sha256" in msg and remote.sha256 in msg
    assert f"{server.base}missing/{name}" in msg and "404" in msg
    assert server.requests == [f"/corrupt/{name}", f"/missing/{name}"]
    assert os.listdir(cache) == []  # neither the file nor a temp file


def test_wrong_cached_file_is_refetched(server, registry_files, mnist_dir, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    with open(os.path.join(mnist_dir, name), "rb") as f:
        real = f.read()
    (tmp_path / name).write_bytes(real[:-10])  # a stale, partial copy
    got = download(_remote(registry_files, name, server.base + "mnist/"), str(tmp_path))
    assert open(got, "rb").read() == real
    assert server.requests == [f"/mnist/{name}"]
    assert os.listdir(tmp_path) == [name]


def test_resolve_data_dir_explicit_folder(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "elsewhere"))
    assert datasets.resolve_data_dir("mnist", mnist_dir) == mnist_dir
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        datasets.resolve_data_dir("mnist", str(tmp_path / "nope"))


def test_resolve_data_dir_from_env(data_root, mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv(datasets.DATA_ENV, data_root)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    assert datasets.resolve_data_dir("mnist") == mnist_dir
    assert not (tmp_path / "cache").exists()  # nothing downloaded
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no folder mnist/"):
        datasets.resolve_data_dir("mnist")


def test_resolve_data_dir_downloads(server, registry_files, mnist_dir, monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path))
    urls = (server.base + "gone/", server.base + "mnist/")
    present = tuple(
        dataclasses.replace(f, urls=urls)
        for f in datasets.get_dataset("mnist").files if f.filename in PRESENT
    )
    monkeypatch.setitem(
        datasets.DATASETS, "mnist", dataclasses.replace(datasets.DATASETS["mnist"], files=present)
    )
    got = datasets.resolve_data_dir("mnist")
    assert got == str(tmp_path / "mnist")
    for name in PRESENT:
        assert sha256_of(os.path.join(got, name)) == sha256_of(os.path.join(mnist_dir, name))
    assert sorted(os.listdir(got)) == sorted(PRESENT)
    assert datasets.resolve_data_dir("mnist") == got  # cached
    assert len(server.requests) == 2 * len(PRESENT)  # one 404 + one hit each

    # The full registry entry also needs train-images, which no URL has.
    full = tuple(dataclasses.replace(f, urls=urls) for f in registry_files.values())
    monkeypatch.setitem(
        datasets.DATASETS, "mnist", dataclasses.replace(datasets.DATASETS["mnist"], files=full)
    )
    with pytest.raises(DownloadError, match="could not download train-images-idx3-ubyte.gz"):
        datasets.resolve_data_dir("mnist")
    assert "train-images-idx3-ubyte.gz" not in os.listdir(got)


def test_every_registered_checksum_matches_the_real_file_where_shared(data_root):
    """The registry's sha256 of each canonical file equals that of the real copy."""
    from model_garden.datasets import DATASETS
    from model_garden.datasets.download import sha256_of

    checked = []
    for dataset in DATASETS.values():
        for remote in dataset.files:
            path = os.path.join(data_root, dataset.name, remote.filename)
            if os.path.exists(path):
                assert sha256_of(path) == remote.sha256, path
                checked.append(remote.filename)
    # MNIST's three present files and census's three UCI originals.
    assert len(checked) == 6, checked
