"""The flowers download over real HTTP: a ``flower_photos.tgz`` built from the shared photos.

The canonical archive (228,813,984 bytes) cannot be fetched here; the test
packs the 400 real photos and ``LICENSE.txt`` as ``flower_photos/...`` (the
canonical layout), serves it from a loopback ``http.server`` and fetches it
with the registered entry's logic (its URL swapped for the server's, the
sha256 for the served archive's): checked, cached, extracted safely, and
then read by the image ExampleGen's layout finder. A corrupted archive and
archives with a ``..`` or a symlink member are refused, leaving nothing
extracted.
"""

import dataclasses
import os
import tarfile

import pytest

from model_garden.datasets import get_dataset, image_layouts
from model_garden.datasets.download import DownloadError, download_all, sha256_of
from tests.test_download_tarball import (  # noqa: F401 (pytest fixtures)
    _no_proxy_for_loopback, _tarball, _tree, server)

ARCHIVE = "flower_photos.tgz"
TOP = "flower_photos"


@pytest.fixture(scope="module")
def photos_dir(data_root):
    return os.path.join(data_root, "flowers", TOP)


def _pack(path, folder, extra=()):
    return _tarball(path, folder, extra, top=TOP)


def _remote(archive, url):
    [canonical] = get_dataset("flowers").files
    assert (canonical.filename, canonical.extract) == (ARCHIVE, TOP)
    assert canonical.urls == ("http://download.tensorflow.org/example_images/",)
    return dataclasses.replace(canonical, sha256=sha256_of(archive), urls=(url,))


def test_the_registered_archive_is_the_published_one():
    [canonical] = get_dataset("flowers").files
    # tensorflow_datasets url_checksums/tf_flowers.txt
    assert canonical.sha256 == "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"


def test_download_extracts_the_photos_the_layout_finder_reads(tmp_path, server, photos_dir):
    archive = _pack(server.www / ARCHIVE, photos_dir)
    remote = _remote(archive, server.url)
    cache = tmp_path / "cache" / "flowers"
    assert download_all([remote], str(cache)) == str(cache)
    assert server.requests == ["/" + ARCHIVE]
    assert sorted(os.listdir(cache)) == [TOP, ARCHIVE]
    assert _tree(cache / TOP) == _tree(photos_dir)  # byte for byte, LICENSE.txt included
    layout = image_layouts.find_flowers(str(cache))
    assert layout.label_names == ("daisy", "dandelion", "roses", "sunflowers", "tulips")
    assert len(list(layout.images())) == 400
    download_all([remote], str(cache))  # cached: not fetched again
    assert server.requests == ["/" + ARCHIVE]


def test_a_corrupted_archive_is_rejected_and_nothing_is_kept(tmp_path, server, photos_dir):
    archive = _pack(server.www / ARCHIVE, photos_dir)
    remote = _remote(archive, server.url)  # the sha256 of the good archive
    data = bytearray(open(archive, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(archive, "wb") as f:
        f.write(data)
    cache = tmp_path / "cache" / "flowers"
    with pytest.raises(DownloadError, match=f"{ARCHIVE}: sha256 [0-9a-f]{{64}} != expected"):
        download_all([remote], str(cache))
    assert os.listdir(cache) == []


def _member(name, kind):
    info = tarfile.TarInfo(name)
    if kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc"
        return info, None
    info.mode = 0o644
    return info, b"pwned\n"


@pytest.mark.parametrize("name, kind", [
    ("../evil.jpg", "file"),
    (f"{TOP}/../../evil.jpg", "file"),
    (f"{TOP}/daisy/escape", "symlink"),
])
def test_an_unsafe_member_is_refused_before_anything_is_extracted(tmp_path, server, photos_dir,
                                                                  name, kind):
    archive = _pack(server.www / ARCHIVE, photos_dir, [_member(name, kind)])
    remote = _remote(archive, server.url)
    cache = tmp_path / "cache" / "flowers"
    with pytest.raises(DownloadError, match=f"refusing archive member {name!r}"):
        download_all([remote], str(cache))
    assert os.listdir(cache) == [ARCHIVE]  # the checked archive only: nothing extracted
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "cache" / "evil.jpg").exists()
