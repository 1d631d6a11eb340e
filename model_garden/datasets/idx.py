"""Reader of MNIST's idx files (numpy only, no TensorFlow).

The format is described at http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS
FOR THE MNIST DATABASE"). All integers are big-endian. A file is::

    magic number   4 bytes: 0x00 0x00, data type (0x08 = uint8), rank
    dimensions     rank x 4-byte unsigned int
    data           prod(dimensions) bytes, row-major

MNIST uses two kinds, both ``uint8``:

* images, magic 2051 (``0x00000803``): ``[N, rows, cols]`` (28 x 28), pixels
  0 (background) .. 255 (ink);
* labels, magic 2049 (``0x00000801``): ``[N]``, digits 0..9.

The published files are gzip'd (``*-ubyte.gz``); :func:`read_idx` reads
gzip'd and plain files alike. Every problem raises :class:`IdxFormatError`,
whose message starts with the file's path.
"""

import gzip
import math
import zlib
from typing import BinaryIO, Callable, Optional, Tuple

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
NUM_CLASSES = 10

_KINDS = {IMAGES_MAGIC: ("images", 3), LABELS_MAGIC: ("labels", 1)}
_GZIP_MAGIC = b"\x1f\x8b"

Opener = Callable[[str], BinaryIO]


class IdxFormatError(ValueError):
    """A file is not a well-formed MNIST idx file (or pair of files).

    ``str(error)`` is ``"<path>: <what is wrong>"``; ``error.path`` is the
    offending file. (``args`` is ``(message, path)`` so that Beam, which
    re-raises worker errors as ``type(e)(args[0] + note, *args[1:])``, keeps
    the type and the path.)
    """

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message, path)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


def _error(path: str, problem: str) -> IdxFormatError:
    return IdxFormatError(f"{path}: {problem}", path)


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb")


def _read_bytes(path: str, open_fn: Optional[Opener]) -> Tuple[bytes, bool]:
    """The file's idx bytes (decompressed if gzip'd), and whether it was."""
    with (open_fn or _open_binary)(path) as f:
        raw = f.read()
    if not raw:
        raise _error(path, "empty file (0 bytes)")
    is_gzip = raw[:2] == _GZIP_MAGIC
    if str(path).endswith(".gz") and not is_gzip:
        raise _error(
            path,
            f"named .gz but is not gzip data (first bytes {raw[:4].hex(' ')}, "
            "gzip starts with 1f 8b)",
        )
    if not is_gzip:
        return raw, False
    try:
        return gzip.decompress(raw), True
    except EOFError as e:
        raise _error(path, f"truncated gzip stream ({len(raw)} bytes): {e}") from e
    except (OSError, zlib.error) as e:
        raise _error(path, f"corrupt gzip data: {e}") from e


def read_idx(
    path: str, expect_magic: Optional[int] = None, *, open_fn: Optional[Opener] = None
) -> np.ndarray:
    """Reads one MNIST idx file (images or labels), gzip'd or plain.

    Gzip is detected by the ``1f 8b`` magic bytes; a name ending in ``.gz``
    must hold gzip data.

    Args:
      path: the file, e.g. ``".../t10k-images-idx3-ubyte.gz"``.
      expect_magic: ``IMAGES_MAGIC`` (2051) or ``LABELS_MAGIC`` (2049) to
        insist on one kind; ``None`` accepts either.
      open_fn: opens ``path`` for binary reading (default the builtin
        ``open``; pass e.g. ``tf.io.gfile.GFile`` for ``gs://``).

    Returns:
      A new (writable) ``np.uint8`` array: ``[N, rows, cols]`` for images
      (magic 2051), ``[N]`` for labels (magic 2049).

    Raises:
      IdxFormatError: an empty file, not gzip despite a ``.gz`` name, bad gzip data, bad or
        unexpected magic number, zero image rows/cols, truncated data or
        trailing bytes. The message names ``path`` and the problem.
      OSError: the file cannot be opened.
    """
    data, was_gzip = _read_bytes(path, open_fn)
    what = "decompressed data" if was_gzip else "file"
    if len(data) < 4:
        raise _error(path, f"truncated: {len(data)} bytes, too short for an idx header")
    magic = int.from_bytes(data[:4], "big")
    if magic not in _KINDS:
        raise _error(
            path,
            f"bad magic number {magic} (0x{magic:08x}); expected {IMAGES_MAGIC} "
            f"(images, idx3 uint8) or {LABELS_MAGIC} (labels, idx1 uint8)",
        )
    kind, rank = _KINDS[magic]
    if expect_magic is not None and magic != expect_magic:
        want = _KINDS[expect_magic][0]
        raise _error(
            path,
            f"magic number {magic} ({kind} file), expected {expect_magic} "
            f"({want} file)",
        )
    header = 4 + 4 * rank
    if len(data) < header:
        raise _error(
            path,
            f"truncated: the {kind} header needs {header} bytes, {what} has {len(data)}",
        )
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=rank, offset=4))
    if rank == 3 and (dims[1] == 0 or dims[2] == 0):
        raise _error(path, f"bad dimensions {'x'.join(map(str, dims))}: empty images")
    # Python ints: np.prod in int64 wraps (2**31 x 2**31 x 4 = 2**64 -> 0 bytes).
    want_bytes = math.prod(dims)
    have = len(data) - header
    shape = "x".join(map(str, dims))
    if have < want_bytes:
        raise _error(
            path,
            f"truncated: header says {shape} = {want_bytes} bytes, {what} has {have}",
        )
    if have > want_bytes:
        raise _error(
            path,
            f"{have - want_bytes} trailing bytes: header says {shape} = "
            f"{want_bytes} bytes, {what} has {have}",
        )
    return np.frombuffer(data, np.uint8, count=want_bytes, offset=header).reshape(dims).copy()


def read_idx_pair(
    images_path: str, labels_path: str, *, open_fn: Optional[Opener] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Reads an MNIST images file and its labels file.

    Args:
      images_path: an idx3 images file (magic 2051), gzip'd or plain.
      labels_path: the matching idx1 labels file (magic 2049).
      open_fn: as in :func:`read_idx`.

    Returns:
      ``(images, labels)``: ``np.uint8`` ``[N, rows, cols]`` and ``np.uint8``
      ``[N]`` with values 0..9; ``labels[i]`` is the digit in ``images[i]``.

    Raises:
      IdxFormatError: either file is malformed (see :func:`read_idx`), the
        counts differ (the message names both files), or a label is not in
        0..9 (the message names the labels file, the index and the value).
    """
    images = read_idx(images_path, IMAGES_MAGIC, open_fn=open_fn)
    labels = read_idx(labels_path, LABELS_MAGIC, open_fn=open_fn)
    if images.shape[0] != labels.shape[0]:
        raise _error(
            labels_path,
            f"has {labels.shape[0]} labels but the images file {images_path} has "
            f"{images.shape[0]} images",
        )
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise _error(
            labels_path,
            f"label {int(labels[bad[0]])} at index {int(bad[0])} is out of range "
            f"0..{NUM_CLASSES - 1} ({bad.size} bad labels)",
        )
    return images, labels
