"""The idx reader on the real MNIST files, and on real files made bad."""

import gzip
import os
import re

import numpy as np
import pytest

from model_garden.datasets.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    IdxFormatError,
    read_idx,
    read_idx_pair,
)

# Class counts from shared/data/PROVENANCE.md.
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def paths(mnist_dir):
    return {
        "images": os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"),
        "labels": os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"),
        "train_labels": os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"),
    }


@pytest.fixture(scope="module")
def raw(paths):
    """Decompressed bytes of the real t10k files."""
    out = {}
    for key in ("images", "labels"):
        with gzip.open(paths[key], "rb") as f:
            out[key] = f.read()
    return out


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_real_t10k_pair(paths):
    images, labels = read_idx_pair(paths["images"], paths["labels"])
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == T10K_COUNTS
    # Real MNIST: 0 = background, full ink range, digits centred (row 0 is
    # blank in every test image; the centre is mostly ink).
    assert images.min() == 0 and images.max() == 255
    assert images[:, 0, :].max() == 0 and images[:, 10:18, 10:18].mean() > 80
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_real_train_labels(paths):
    labels = read_idx(paths["train_labels"])
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == TRAIN_COUNTS
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_gzip_and_plain_read_the_same(paths, raw, tmp_path):
    for key, magic in (("images", IMAGES_MAGIC), ("labels", LABELS_MAGIC)):
        plain = _write(tmp_path / f"{key}-plain", raw[key])
        a = read_idx(paths[key], magic)
        b = read_idx(plain, magic)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # gzip is detected by its magic bytes, not only by a .gz name
    renamed = _write(tmp_path / "t10k-labels-no-suffix", open(paths["labels"], "rb").read())
    assert np.array_equal(read_idx(renamed), read_idx(paths["labels"]))


def test_arrays_are_writable(paths):
    labels = read_idx(paths["labels"])
    labels[0] = 3
    assert labels[0] == 3


def _raises(path, *fragments):
    """Expects an IdxFormatError whose message starts with ``path: `` and
    then contains ``fragments`` in order."""
    return pytest.raises(
        IdxFormatError, match="^" + ".*".join(re.escape(str(f)) for f in (f"{path}: ",) + fragments)
    )


def test_truncated_plain(raw, tmp_path):
    bad = _write(tmp_path / "t10k-images-idx3-ubyte", raw["images"][: 16 + 123])
    with pytest.raises(IdxFormatError) as e:
        read_idx(bad)
    assert str(e.value) == (
        f"{bad}: truncated: header says 10000x28x28 = 7840000 bytes, file has 123"
    )
    assert e.value.path == bad


def test_truncated_header(raw, tmp_path):
    bad = _write(tmp_path / "t10k-images-idx3-ubyte", raw["images"][:10])
    with _raises(bad, "truncated", "header needs 16 bytes"):
        read_idx(bad)
    tiny = _write(tmp_path / "tiny", raw["labels"][:3])
    with _raises(tiny, "truncated"):
        read_idx(tiny)


def test_truncated_gzip(paths, tmp_path):
    data = open(paths["images"], "rb").read()
    bad = _write(tmp_path / "t10k-images-idx3-ubyte.gz", data[: len(data) // 2])
    with _raises(bad, "truncated gzip"):
        read_idx(bad)


def test_corrupt_gzip(paths, tmp_path):
    data = bytearray(open(paths["labels"], "rb").read())
    data[-6] ^= 0xFF  # inside the CRC32 / size trailer
    bad = _write(tmp_path / "t10k-labels-idx1-ubyte.gz", bytes(data))
    with _raises(bad, "corrupt gzip"):
        read_idx(bad)


def test_gz_name_but_not_gzip(raw, tmp_path):
    bad = _write(tmp_path / "t10k-labels-idx1-ubyte.gz", raw["labels"])
    with _raises(bad, "not gzip"):
        read_idx(bad)


def test_images_passed_as_labels(paths):
    with _raises(paths["images"], "magic number 2051 (images file), expected 2049"):
        read_idx_pair(paths["images"], paths["images"])
    with _raises(paths["images"], "magic number 2051", "expected 2049"):
        read_idx(paths["images"], LABELS_MAGIC)
    # swapped: the labels file, checked first as images, is named
    with _raises(paths["labels"], "magic number 2049 (labels file), expected 2051"):
        read_idx_pair(paths["labels"], paths["images"])


def test_byte_flipped_magic(raw, tmp_path):
    data = bytearray(raw["images"])
    data[2] ^= 0xFF  # data-type byte 0x08 -> 0xf7
    bad = _write(tmp_path / "t10k-images-idx3-ubyte", bytes(data))
    with _raises(bad, "bad magic number", "0x0000f703"):
        read_idx(bad)


def test_trailing_bytes(raw, tmp_path):
    bad = _write(tmp_path / "t10k-labels-idx1-ubyte", raw["labels"] + b"\x00\x07")
    with _raises(bad, "2 trailing bytes", "header says 10000 = 10000 bytes"):
        read_idx(bad)
    # also inside a gzip stream
    badgz = _write(tmp_path / "t10k-labels-idx1-ubyte.gz", gzip.compress(raw["labels"] + b"x"))
    with _raises(badgz, "1 trailing bytes"):
        read_idx(badgz)


def test_zero_size_images(raw, tmp_path):
    data = bytearray(raw["images"][:16])
    data[8:12] = (0).to_bytes(4, "big")  # rows = 0
    bad = _write(tmp_path / "t10k-images-idx3-ubyte", bytes(data))
    with _raises(bad, "bad dimensions 10000x0x28"):
        read_idx(bad)


def test_mismatched_counts(paths, raw, tmp_path):
    header = LABELS_MAGIC.to_bytes(4, "big") + (9999).to_bytes(4, "big")
    short = _write(tmp_path / "t10k-labels-idx1-ubyte", header + raw["labels"][8 : 8 + 9999])
    assert read_idx(short).shape == (9999,)  # well-formed on its own
    with _raises(short, "9999 labels", paths["images"], "10000 images"):
        read_idx_pair(paths["images"], short)


def test_label_out_of_range(paths, raw, tmp_path):
    data = bytearray(raw["labels"])
    data[8 + 1234] = 10
    bad = _write(tmp_path / "t10k-labels-idx1-ubyte", bytes(data))
    assert read_idx(bad)[1234] == 10  # the format allows it ...
    with _raises(bad, "label 10 at index 1234", "0..9"):  # ... MNIST does not
        read_idx_pair(paths["images"], bad)


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(str(tmp_path / "nope-idx1-ubyte.gz"))


@pytest.mark.parametrize("name", ["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"])
def test_empty_file_is_called_empty(tmp_path, name):
    """Issue 13: a 0-byte .gz was "not gzip data (first bytes , ...)"."""
    bad = _write(tmp_path / name, b"")
    with pytest.raises(IdxFormatError) as e:
        read_idx(bad)
    assert str(e.value) == f"{bad}: empty file (0 bytes)"
    assert e.value.path == bad


def test_dimensions_whose_product_overflows_int64_are_truncation(tmp_path):
    """Found by the fuzzer's review (issue 13): np.prod in int64 wrapped 2**31 x 2**31 x 4
    to 0 bytes, and a bare 16-byte header failed in numpy's reshape with a ValueError."""
    header = b"".join(v.to_bytes(4, "big") for v in (IMAGES_MAGIC, 2**31, 2**31, 4))
    bad = _write(tmp_path / "t10k-images-idx3-ubyte", header)
    with _raises(bad, "truncated: header says 2147483648x2147483648x4 = "
                      "18446744073709551616 bytes, file has 0"):
        read_idx(bad)
