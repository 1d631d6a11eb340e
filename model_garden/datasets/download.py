"""Downloads of canonical dataset files, checked by sha256, cached, atomic.

Works like TF-Slim's ``download_and_convert_data.py`` (and
``tf.keras.utils.get_file``): each file is fetched from its canonical URL, or
from the next mirror when that fails, with a progress bar; it is written to a
temporary file beside its destination, checked against its published sha256,
and only then moved into place, so an interrupted or corrupted download never
leaves a file that looks valid. A cached file whose checksum matches is not
fetched again.
"""

import dataclasses
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from typing import Iterable, List, Optional, Sequence

_CHUNK = 1 << 16
TIMEOUT_ENV = "MODEL_GARDEN_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 60.0


class DownloadError(RuntimeError):
    """A file could not be fetched from any of its URLs, or failed its check."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One canonical file of a dataset.

    Attributes:
      filename: name of the file in the dataset directory, e.g.
        ``"t10k-images-idx3-ubyte.gz"``.
      sha256: the published sha256 hex digest of the file.
      urls: base URLs to try in order (canonical first, then mirrors); the
        file's URL is ``base + filename``.
      extract: for a ``.tar.gz``, the single top folder it holds (e.g.
        ``"cifar-10-batches-py"``), extracted beside it after the check.
    """

    filename: str
    sha256: str
    urls: Sequence[str]
    extract: Optional[str] = None


def sha256_of(path: str) -> str:
    """Hex sha256 digest of the file at ``path``, read in 64 KiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_to(url: str, out, desc: str, timeout: float) -> None:
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
            leave=False,
        ) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))


def _reason(error: BaseException, timeout: float) -> str:
    """What went wrong with one URL, in a few words (no newlines)."""
    reason = getattr(error, "reason", None) if isinstance(error, urllib.error.URLError) else None
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code} {error.reason}"
    elif isinstance(reason, BaseException) or isinstance(error, TimeoutError):
        cause = reason if isinstance(reason, BaseException) else error
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            text = f"no answer within {timeout:g} s (stalled or unreachable)"
        else:
            text = str(cause)
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def download_timeout() -> float:
    """Seconds a download waits on a stalled connection: ``$MODEL_GARDEN_DOWNLOAD_TIMEOUT``, else 60.

    A value that is not a positive number is logged and the default used.
    """
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        logging.warning("$%s=%r is not a number of seconds > 0; waiting %g s", TIMEOUT_ENV, text,
                        DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    return value


def download(remote: RemoteFile, cache_dir: str, timeout: Optional[float] = None) -> str:
    """Returns the local path of ``remote``, downloading it if needed.

    Args:
      remote: the file and its checksum and URLs.
      cache_dir: directory the file is kept in (created if missing).
      timeout: seconds to wait on a stalled connection (default
        :func:`download_timeout`: 60, or ``$MODEL_GARDEN_DOWNLOAD_TIMEOUT``).

    Returns:
      ``os.path.join(cache_dir, remote.filename)``, a file whose sha256 is
      ``remote.sha256``.

    Raises:
      DownloadError: every URL failed, or every download had the wrong
        checksum; the message (one line) lists each URL and what went wrong.
    """
    if timeout is None:
        timeout = download_timeout()
    os.makedirs(cache_dir, exist_ok=True)
    dest = os.path.join(cache_dir, remote.filename)
    if os.path.exists(dest):
        if sha256_of(dest) == remote.sha256:
            return dest
        logging.warning("%s: cached file fails its sha256 check; fetching again", dest)
    errors: List[str] = []
    for base in remote.urls:
        url = base + remote.filename
        fd, tmp = tempfile.mkstemp(prefix=f".{remote.filename}.", dir=cache_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch_to(url, out, remote.filename, timeout)
            got = sha256_of(tmp)
            if got != remote.sha256:
                errors.append(f"{url}: sha256 {got} != expected {remote.sha256}")
                continue
            os.replace(tmp, dest)
            logging.info("downloaded %s", url)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {_reason(e, timeout)}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DownloadError(
        f"could not download {remote.filename} into {cache_dir}: " + "; ".join(errors))


def extract_tarball(archive: str, dest_dir: str, top: str) -> str:
    """Extracts the gzip'd tarball ``archive``'s folder ``top`` into ``dest_dir``.

    Every member must be a plain file or folder under ``top`` (no absolute
    paths, ``..``, links or devices): an archive from the internet must not
    write outside its folder. It is extracted into a temporary folder and
    renamed into place, so a failed extraction leaves nothing behind.

    Returns:
      ``os.path.join(dest_dir, top)`` (kept as is when it exists already).

    Raises:
      DownloadError: a member breaks the rules above, naming it.
    """
    final = os.path.join(dest_dir, top)
    if os.path.isdir(final):
        return final
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        for m in members:
            parts = os.path.normpath(m.name).split(os.sep)
            if (os.path.isabs(m.name) or ".." in parts or parts[0] != top
                    or not (m.isfile() or m.isdir())):
                raise DownloadError(f"{archive}: refusing archive member {m.name!r}")
        tmp = tempfile.mkdtemp(prefix=f".{top}.", dir=dest_dir)
        try:
            tar.extractall(tmp, members=members, filter="data")
            os.replace(os.path.join(tmp, top), final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def download_all(files: Iterable[RemoteFile], cache_dir: str) -> str:
    """Downloads (and extracts) every file into ``cache_dir``; returns ``cache_dir``.

    Raises:
      DownloadError: as :func:`download` and :func:`extract_tarball`, for the
        first file that fails.
    """
    for remote in files:
        path = download(remote, cache_dir)
        if remote.extract:
            extract_tarball(path, cache_dir, remote.extract)
    return cache_dir

