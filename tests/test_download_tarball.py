"""`download_all` of a CIFAR-10 tarball over real HTTP, and unsafe archives.

The canonical ``cifar-10-python.tar.gz`` (about 163 MB) is not in
``shared/data`` (see its PROVENANCE.md), so the tests build one with the
canonical layout from the real CIFAR-10 images: ``cifar-10-batches-py/``
holding ``data_batch_1..5`` (the 1,000 real training JPEGs, decoded, 200 per
batch, every 5th image) and ``test_batch`` (the 1,000 real test JPEGs),
written as the canonical pickles are (see ``test_cifar10_readers``), plus the
real ``batches.meta`` and ``readme.html``. The tarball is served by a
loopback ``http.server`` (127.0.0.1, a free port) and fetched by
:func:`model_garden.datasets.download.download_all` exactly as from
cs.toronto.edu: sha256-checked, then extracted into the cache folder.

Archives with a member that would write outside the extracted folder (a
``..`` path, an absolute path, a symlink) are refused, naming the member,
before anything is extracted.
"""

import dataclasses
import functools
import http.server
import io
import os
import re
import shutil
import tarfile
import threading

import numpy as np
import pytest

from model_garden.datasets import cifar10, get_dataset
from model_garden.datasets.download import DownloadError, download_all, sha256_of
from tests.test_cifar10_readers import real_split, write_python_batch

ARCHIVE = "cifar-10-python.tar.gz"
TOP = cifar10.PY_DIR  # "cifar-10-batches-py"
TRAIN_BATCHES = len(cifar10.PY_TRAIN_FILES)  # 5


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch):
    # A proxy configured for the machine must not intercept 127.0.0.1.
    for key in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(key, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def canonical(tmp_path_factory, data_root):
    """A canonical ``cifar-10-batches-py/`` folder from the real images.

    Returns:
      dict: ``folder`` (the folder's path), ``train`` / ``test`` (uint8
      ``[N, 32, 32, 3]`` pixels, int labels ``[N]``) and ``names`` (the
      real batches.meta label names).
    """
    real_py = os.path.join(data_root, "cifar10", TOP)
    names = cifar10.load_label_names(os.path.join(real_py, cifar10.PY_META))
    folder = tmp_path_factory.mktemp("canonical") / TOP
    folder.mkdir()
    splits = {}
    for split in ("train", "test"):
        paths, pixels, labels = real_split(data_root, split)
        filenames = [f"{os.path.basename(os.path.dirname(p))}_{os.path.basename(p)}"
                     for p in paths]
        splits[split] = (pixels, np.array(labels), filenames)
    pixels, labels, filenames = splits["train"]
    for k, name in enumerate(cifar10.PY_TRAIN_FILES):
        rows = slice(k, None, TRAIN_BATCHES)  # every 5th image: 20 per class
        write_python_batch(str(folder / name), pixels[rows], labels[rows],
                           filenames[k::TRAIN_BATCHES],
                           f"training batch {k + 1} of {TRAIN_BATCHES}")
    pixels, labels, filenames = splits["test"]
    write_python_batch(str(folder / "test_batch"), pixels, labels, filenames,
                       "testing batch 1 of 1")
    for name in (cifar10.PY_META, "readme.html"):
        shutil.copy(os.path.join(real_py, name), folder / name)
    return {"folder": str(folder), "names": names,
            "train": splits["train"][:2], "test": splits["test"][:2]}


def _tarball(path, folder, extra=(), top=TOP):
    """Writes ``folder`` as ``top/...`` (folder entry first, files sorted),
    then each ``(TarInfo, bytes or None)`` of ``extra``; returns ``path``."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=top)  # recursive, sorted
        for info, data in extra:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return str(path)


class _Server:
    """A loopback HTTP server of one folder, recording the paths requested."""

    def __init__(self, folder):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path):
    """Serves ``tmp_path/www`` on 127.0.0.1; ``server.www`` is that folder."""
    www = tmp_path / "www"
    www.mkdir()
    srv = _Server(www)
    srv.www = www
    yield srv
    srv.close()


def _tree(folder):
    """Every path under ``folder`` (relative), with each file's sha256."""
    out = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = "link->" + os.readlink(path)
            elif os.path.isfile(path):
                out[rel] = sha256_of(path)
            else:
                out[rel] = "dir"
    return out


def _remote(archive_path, url):
    """The registered CIFAR-10 RemoteFile, from ``url``, with this archive's sha256."""
    [canonical] = get_dataset("cifar10").files
    assert (canonical.filename, canonical.extract) == (ARCHIVE, TOP)
    return dataclasses.replace(canonical, sha256=sha256_of(archive_path), urls=(url,))


def test_download_extracts_a_checked_tarball_the_cifar_reader_reads(tmp_path, server,
                                                                    canonical):
    from model_garden.components.cifar10_example_gen import detect_layout

    archive = _tarball(server.www / ARCHIVE, canonical["folder"])
    remote = _remote(archive, server.url)
    cache = tmp_path / "cache" / "cifar10"

    assert download_all([remote], str(cache)) == str(cache)
    assert server.requests == ["/" + ARCHIVE]
    assert sorted(os.listdir(cache)) == [TOP, ARCHIVE]  # no temporary files left
    assert sha256_of(str(cache / ARCHIVE)) == remote.sha256
    # The extracted folder is the packed one, byte for byte.
    assert _tree(cache / TOP) == _tree(canonical["folder"])

    # The CIFAR-10 reader and the ExampleGen's layout detection read it.
    extracted = str(cache / TOP)
    layout = detect_layout(str(cache))
    assert (layout.kind, layout.folder) == ("python", TOP)
    assert cifar10.load_label_names(layout.meta) == canonical["names"]
    pixels, labels = canonical["train"]
    for k, name in enumerate(cifar10.PY_TRAIN_FILES):
        batch = cifar10.load_python_batch(os.path.join(extracted, name))
        assert batch.images.shape == (len(labels) // TRAIN_BATCHES, 32, 32, 3)
        assert batch.images.dtype == np.uint8
        np.testing.assert_array_equal(batch.images, pixels[k::TRAIN_BATCHES])
        np.testing.assert_array_equal(batch.labels, labels[k::TRAIN_BATCHES])
    test = cifar10.load_python_batch(os.path.join(extracted, "test_batch"))
    np.testing.assert_array_equal(test.images, canonical["test"][0])
    np.testing.assert_array_equal(test.labels, canonical["test"][1])
    assert np.bincount(test.labels).tolist() == [100] * len(canonical["names"])

    # A second call finds the checked archive and the folder: no new request.
    before = _tree(cache)
    assert download_all([remote], str(cache)) == str(cache)
    assert server.requests == ["/" + ARCHIVE]
    assert _tree(cache) == before


def test_wrong_checksum_leaves_nothing(tmp_path, server, canonical):
    """The registered (published) sha256 of the canonical tarball is not that
    of the served archive: refused, and the cache folder stays empty."""
    _tarball(server.www / ARCHIVE, canonical["folder"])
    [published] = get_dataset("cifar10").files
    remote = dataclasses.replace(published, urls=(server.url,))
    cache = tmp_path / "cache" / "cifar10"
    before = _tree(tmp_path)

    with pytest.raises(DownloadError, match=f"{re.escape(ARCHIVE)}: sha256 [0-9a-f]{{64}} "
                                            f"!= expected {published.sha256}"):
        download_all([remote], str(cache))
    assert server.requests == ["/" + ARCHIVE]
    assert os.listdir(cache) == []
    assert _tree(tmp_path) == {**before, os.path.relpath(cache, tmp_path): "dir",
                               os.path.relpath(cache.parent, tmp_path): "dir"}


def _file(name, data=b"pwned\n"):
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def _symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def _evil_members(kind, outside):
    """``(members to append, the member the refusal must name)``."""
    if kind == "dotdot":
        return [_file("../evil")], "../evil"
    if kind == "dotdot_inside_top":  # starts with the expected folder
        return [_file(f"{TOP}/../../evil")], f"{TOP}/../../evil"
    if kind == "absolute":
        name = os.path.join(str(outside), "absolute_evil")
        return [_file(name)], name
    if kind == "symlink":  # a link out of the folder, then a file through it
        link = f"{TOP}/escape"
        return [_symlink(link, str(outside)), _file(f"{link}/evil")], link
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["dotdot", "dotdot_inside_top", "absolute", "symlink"])
def test_unsafe_archive_member_is_refused_and_nothing_is_extracted(tmp_path, server,
                                                                   canonical, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    extra, named = _evil_members(kind, outside)
    # The valid files come first: an extractor that streamed members would
    # have written them before meeting the unsafe one.
    archive = _tarball(server.www / ARCHIVE, canonical["folder"], extra)
    with tarfile.open(archive) as tar:  # the archive really holds the member
        assert tar.getnames()[-len(extra):] == [info.name for info, _ in extra]
    remote = _remote(archive, server.url)
    cache = tmp_path / "cache" / "cifar10"
    before = _tree(tmp_path)

    with pytest.raises(DownloadError, match=f"refusing archive member {re.escape(repr(named))}"):
        download_all([remote], str(cache))
    assert server.requests == ["/" + ARCHIVE]
    # Only the downloaded archive itself (it passed its sha256 check) is in the
    # cache: no extracted folder, no temporary folder, and nothing written
    # anywhere else.
    assert os.listdir(cache) == [ARCHIVE]
    after = _tree(tmp_path)
    cache_rel = os.path.relpath(cache, tmp_path)
    assert after == {**before, os.path.dirname(cache_rel): "dir", cache_rel: "dir",
                     os.path.join(cache_rel, ARCHIVE): remote.sha256}
    assert os.listdir(outside) == []
    assert not os.path.lexists(tmp_path / "evil")
    assert not os.path.lexists(cache.parent / "evil")
