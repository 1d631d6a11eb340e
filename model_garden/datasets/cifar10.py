"""Readers of the canonical CIFAR-10 distributions (no TensorFlow needed).

Source: https://www.cs.toronto.edu/~kriz/cifar.html (Krizhevsky, "Learning
Multiple Layers of Features from Tiny Images", 2009).

*Python version* (``cifar-10-python.tar.gz`` -> ``cifar-10-batches-py/``):
``data_batch_1`` .. ``data_batch_5`` (10,000 images each), ``test_batch``
(10,000) and ``batches.meta``. Each batch is a pickled dict (written by
Python 2 ``cPickle``, protocol 2) with

* ``b"data"``: numpy ``uint8`` array ``[N, 3072]``; each row is one 32x32
  image as three planes R, G, B of 1,024 row-major pixels;
* ``b"labels"``: ``N`` ints in 0..9;
* ``b"filenames"``: ``N`` byte strings; ``b"batch_label"``: a byte string.

``batches.meta`` is a dict with ``b"label_names"`` (10 names),
``b"num_cases_per_batch"`` and ``b"num_vis"``.

*Binary version* (``cifar-10-binary.tar.gz`` -> ``cifar-10-batches-bin/``):
``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``: records of
1 label byte + 3,072 pixel bytes (same plane order); ``batches.meta.txt``:
one label name per line.

Pickles are never loaded with plain :func:`pickle.load`: a pickle can call
any importable function. :class:`SafeUnpickler` resolves only the globals a
CIFAR batch needs to rebuild its numpy array (``numpy.core.multiarray.
_reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; and ``_codecs.encode``
restricted to latin-1, which is how Python 3 writes ``bytes`` at protocol 2)
and refuses every other one before anything is called.
"""

import codecs
import dataclasses
import io
import os
import pickle
from typing import Dict, List, Sequence

import numpy as np

HEIGHT = WIDTH = 32
CHANNELS = 3
NUM_PIXELS = HEIGHT * WIDTH * CHANNELS  # 3,072 bytes per image
NUM_CLASSES = 10
RECORD_BYTES = 1 + NUM_PIXELS  # binary version: label byte + pixels

PY_DIR = "cifar-10-batches-py"
BIN_DIR = "cifar-10-batches-bin"
PY_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
PY_TEST_FILES = ("test_batch",)
PY_META = "batches.meta"
BIN_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
BIN_TEST_FILES = ("test_batch.bin",)
BIN_META = "batches.meta.txt"


class CifarFormatError(ValueError):
    """A CIFAR-10 file is malformed or unsafe; the message names the file."""


@dataclasses.dataclass
class CifarBatch:
    """The images of one CIFAR-10 batch file.

    Attributes:
      images: uint8 ``[N, 32, 32, 3]`` (height, width, RGB).
      labels: int64 ``[N]``, each in ``0..num_classes-1``.
      filenames: ``N`` original file names (python version; empty for the
        binary version, which has none).
    """

    images: np.ndarray
    labels: np.ndarray
    filenames: List[str]


def rows_to_images(rows: np.ndarray) -> np.ndarray:
    """CIFAR rows ``[N, 3072]`` (R, G, B planes) -> uint8 ``[N, 32, 32, 3]``."""
    return rows.reshape(-1, CHANNELS, HEIGHT, WIDTH).transpose(0, 2, 3, 1)


def _latin1_encode(text, encoding="latin1"):
    # How Python 3 pickles bytes at protocol <= 2: _codecs.encode(str, "latin1").
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> Dict[tuple, object]:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray

    allowed = {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    return allowed


class SafeUnpickler(pickle._Unpickler):  # noqa: SLF001 - the pure-Python unpickler
    """An unpickler that resolves only the globals a CIFAR pickle uses.

    It is Python's own pure-Python unpickler (``pickle._Unpickler``), not the
    C one: the C unpickler keeps its memo in an array sized by the largest
    index a ``LONG_BINPUT`` names, so four bytes of a 158-byte file
    (``LONG_BINPUT 1426551140``, found by tests/test_fuzz_readers.py) made it
    allocate gigabytes and take most of a minute before failing. The pure one
    keeps a dict; a CIFAR batch (one large byte string, some 40,000 small
    opcodes) unpickles with it in a fraction of a second.

    Args:
      file: a binary file object.
      path: the file's name, for error messages.
    """

    def __init__(self, file, path: str):
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise CifarFormatError(
                f"{self._path}: the pickle references the global {module}.{name}, "
                "which a CIFAR-10 batch never does; refusing to load it"
            ) from None

    def persistent_load(self, pid):
        raise CifarFormatError(f"{self._path}: the pickle uses persistent ids")


def _read(path: str) -> bytes:
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def _exists(path: str) -> bool:
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.exists(path)
    return os.path.exists(path)


def safe_load_pickle(path: str):
    """Unpickles ``path`` with :class:`SafeUnpickler` (``encoding="bytes"``).

    Raises:
      CifarFormatError: a forbidden global, or a corrupt/truncated pickle.
    """
    try:
        return SafeUnpickler(io.BytesIO(_read(path)), path).load()
    except CifarFormatError:
        raise
    except Exception as e:  # pickle raises many types on corrupt input
        raise CifarFormatError(f"{path}: not a readable pickle ({e!r})") from e


def _key(d: dict, name: str, path: str):
    for key in (name.encode(), name):  # python-2 str -> bytes; python-3 str
        if key in d:
            return d[key]
    raise CifarFormatError(
        f"{path}: missing key {name!r} (has {sorted(map(repr, d))})"
    )


def _text(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _check_labels(labels: np.ndarray, num_classes: int, path: str) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise CifarFormatError(
            f"{path}: label {int(labels[i])} of image {i} is out of range "
            f"0..{num_classes - 1}"
        )


def load_python_batch(path: str, num_classes: int = NUM_CLASSES) -> CifarBatch:
    """Reads one python-version batch (``data_batch_N`` or ``test_batch``).

    Args:
      path: the pickle file.
      num_classes: labels must lie in ``0..num_classes-1``.

    Returns:
      A :class:`CifarBatch`.

    Raises:
      CifarFormatError: naming ``path``: not a dict, missing ``data`` or
        ``labels``, ``data`` not a uint8 ``[N, 3072]`` array, label count
        not ``N``, a label out of range, or an unsafe pickle.
    """
    batch = safe_load_pickle(path)
    if not isinstance(batch, dict):
        raise CifarFormatError(f"{path}: expected a dict, got {type(batch).__name__}")
    data = _key(batch, "data", path)
    labels = _key(batch, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise CifarFormatError(
            f"{path}: 'data' must be a uint8 numpy array, got "
            f"{getattr(data, 'dtype', type(data).__name__)}"
        )
    if data.ndim != 2 or data.shape[1] != NUM_PIXELS:
        raise CifarFormatError(
            f"{path}: 'data' has shape {data.shape}, expected [N, {NUM_PIXELS}]"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise CifarFormatError(f"{path}: 'labels' are not integers ({e})") from None
    if labels.shape != (data.shape[0],):
        raise CifarFormatError(
            f"{path}: {labels.size} labels for {data.shape[0]} images"
        )
    _check_labels(labels, num_classes, path)
    names = batch.get(b"filenames", batch.get("filenames", []))
    filenames = [_text(n) for n in names]
    if filenames and len(filenames) != data.shape[0]:
        raise CifarFormatError(
            f"{path}: {len(filenames)} filenames for {data.shape[0]} images"
        )
    return CifarBatch(rows_to_images(data), labels, filenames)


def load_binary_batch(path: str, num_classes: int = NUM_CLASSES) -> CifarBatch:
    """Reads one binary-version batch (``data_batch_N.bin``, ``test_batch.bin``).

    Returns:
      A :class:`CifarBatch` without filenames.

    Raises:
      CifarFormatError: naming ``path``: empty, size not a multiple of
        3,073 bytes (a truncated record), or a label out of range.
    """
    raw = _read(path)
    if not raw or len(raw) % RECORD_BYTES:
        raise CifarFormatError(
            f"{path}: {len(raw)} bytes is not a whole number of "
            f"{RECORD_BYTES}-byte records (truncated record "
            f"{len(raw) // RECORD_BYTES} has {len(raw) % RECORD_BYTES} bytes)"
        )
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, num_classes, path)
    return CifarBatch(rows_to_images(records[:, 1:]), labels, [])


def load_label_names(path: str) -> List[str]:
    """Class names in label order from ``batches.meta`` or ``batches.meta.txt``.

    Raises:
      CifarFormatError: naming ``path``: no ``label_names`` or an empty
        list, or an unsafe pickle.
    """
    if path.endswith(".txt"):
        names = [line.strip() for line in _read(path).decode("utf-8").splitlines()]
        names = [n for n in names if n]
    else:
        meta = safe_load_pickle(path)
        if not isinstance(meta, dict):
            raise CifarFormatError(f"{path}: expected a dict, got {type(meta).__name__}")
        names = [_text(n) for n in _key(meta, "label_names", path)]
    if not names:
        raise CifarFormatError(f"{path}: no label names")
    return names


def check_complete(folder: str, names: Sequence[str]) -> None:
    """Raises ``CifarFormatError`` naming the batch files missing in ``folder``."""
    missing = [n for n in names if not _exists(os.path.join(folder, n))]
    if missing:
        raise CifarFormatError(f"{folder}: missing {missing}")
