"""CIFAR-10 readers on files built from the real CIFAR-10 images.

The canonical batches are not in ``shared/data`` (see its PROVENANCE.md),
so the tests decode the real JPEG/PNG copies of CIFAR-10 images and write
batches exactly as the canonical files are made (python version: a dict
with ``batch_label``, ``labels``, ``data`` (uint8 [N, 3072], R, G, B planes)
and ``filenames``, pickled at protocol 2; binary version: label byte +
3,072 pixel bytes per record), then read them back. The helpers here are
also used by ``test_cifar10_example_gen.py``.
"""

import glob
import os
import pickle
import re

import numpy as np
import pytest

from model_garden.datasets import cifar10, image_folder

JPG = "cifar-10-images-jpg"


def real_split(data_root, split):
    """The real JPEGs of ``split``: (paths, uint8 [N,32,32,3] pixels, labels).

    Labels are the index of the class folder in the real ``batches.meta``.
    """
    import tensorflow as tf

    root = os.path.join(data_root, "cifar10")
    names = cifar10.load_label_names(
        os.path.join(root, "cifar-10-batches-py", "batches.meta")
    )
    paths = sorted(glob.glob(os.path.join(root, JPG, split, "*", "*.jpg")))
    pixels = np.stack(
        [tf.io.decode_jpeg(tf.io.read_file(p), channels=3).numpy() for p in paths]
    )
    labels = [names.index(os.path.basename(os.path.dirname(p))) for p in paths]
    return paths, pixels, labels


def cifar_row(image):
    """One canonical CIFAR row: the R plane, then G, then B, each row-major."""
    return np.concatenate([image[:, :, c].reshape(-1) for c in range(3)])


def write_python_batch(path, images, labels, filenames, batch_label):
    """Writes a python-version batch as the canonical ones are made."""
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(x) for x in labels],
        b"data": np.stack([cifar_row(im) for im in images]).astype(np.uint8),
        b"filenames": [f.encode() for f in filenames],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_binary_batch(path, images, labels):
    """Writes a binary-version batch: per image 1 label byte + 3,072 pixels."""
    with open(path, "wb") as f:
        for image, label in zip(images, labels):
            f.write(bytes([label]) + cifar_row(image).astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def train_images(data_root):
    return real_split(data_root, "train")


def test_real_batches_meta_has_the_ten_classes(data_root):
    root = os.path.join(data_root, "cifar10")
    names = cifar10.load_label_names(
        os.path.join(root, "cifar-10-batches-py", "batches.meta")
    )
    assert len(names) == cifar10.NUM_CLASSES
    # The real JPEG copy has one folder per class, under the same names.
    assert sorted(names) == sorted(os.listdir(os.path.join(root, JPG, "train")))
    assert names[0] == "airplane" and names[-1] == "truck"


def test_python_batch_round_trip(tmp_path, train_images):
    paths, pixels, labels = train_images
    filenames = [os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p)
                 for p in paths]
    path = str(tmp_path / "data_batch_1")
    write_python_batch(path, pixels, labels, filenames, "training batch 1 of 5")
    batch = cifar10.load_python_batch(path)
    assert batch.images.dtype == np.uint8
    assert batch.images.shape == pixels.shape == (len(paths), 32, 32, 3)
    np.testing.assert_array_equal(batch.images, pixels)
    np.testing.assert_array_equal(batch.labels, labels)
    assert batch.filenames == filenames


def test_binary_batch_round_trip(tmp_path, train_images):
    _, pixels, labels = train_images
    path = str(tmp_path / "data_batch_1.bin")
    write_binary_batch(path, pixels, labels)
    assert os.path.getsize(path) == len(labels) * (1 + 32 * 32 * 3)
    batch = cifar10.load_binary_batch(path)
    np.testing.assert_array_equal(batch.images, pixels)
    np.testing.assert_array_equal(batch.labels, labels)


def test_binary_meta_txt(tmp_path, data_root):
    names = cifar10.load_label_names(
        os.path.join(data_root, "cifar10", "cifar-10-batches-py", "batches.meta")
    )
    path = tmp_path / "batches.meta.txt"
    path.write_text("\n".join(names) + "\n\n")  # the real file ends in blank lines
    assert cifar10.load_label_names(str(path)) == names


def test_truncated_binary_record_names_the_file(tmp_path, train_images):
    _, pixels, labels = train_images
    path = str(tmp_path / "data_batch_2.bin")
    write_binary_batch(path, pixels[:3], labels[:3])
    with open(path, "r+b") as f:
        f.truncate(3 * 3073 - 1)
    with pytest.raises(cifar10.CifarFormatError, match="data_batch_2.bin.*truncated"):
        cifar10.load_binary_batch(path)


def test_wrong_array_size_names_the_file(tmp_path, train_images):
    _, pixels, labels = train_images
    path = str(tmp_path / "data_batch_3")
    rows = np.stack([cifar_row(im) for im in pixels[:4]])[:, :-1]  # 3,071 bytes
    with open(path, "wb") as f:
        pickle.dump({b"labels": labels[:4], b"data": rows, b"filenames": []}, f, 2)
    with pytest.raises(cifar10.CifarFormatError, match="data_batch_3.*3071"):
        cifar10.load_python_batch(path)


def test_label_out_of_range_names_the_file(tmp_path, train_images):
    _, pixels, labels = train_images
    bad = list(labels[:5])
    bad[3] = 11
    py = str(tmp_path / "test_batch")
    write_python_batch(py, pixels[:5], bad, ["a"] * 5, "testing batch 1 of 1")
    with pytest.raises(cifar10.CifarFormatError, match="test_batch: label 11 of image 3"):
        cifar10.load_python_batch(py)
    binary = str(tmp_path / "test_batch.bin")
    write_binary_batch(binary, pixels[:5], bad)
    with pytest.raises(cifar10.CifarFormatError, match="test_batch.bin: label 11"):
        cifar10.load_binary_batch(binary)


def test_missing_key_names_the_file(tmp_path, train_images):
    _, pixels, _ = train_images
    path = str(tmp_path / "data_batch_4")
    with open(path, "wb") as f:
        pickle.dump({b"data": np.stack([cifar_row(im) for im in pixels[:2]])}, f, 2)
    with pytest.raises(cifar10.CifarFormatError, match="data_batch_4: missing key 'labels'"):
        cifar10.load_python_batch(path)


class _RunsShell:
    """Pickles as a call of os.system (what a malicious 'batch' would hold)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_with_other_global_is_refused_not_run(tmp_path, train_images):
    _, pixels, labels = train_images
    marker = tmp_path / "pwned"
    path = str(tmp_path / "data_batch_5")
    batch = {
        b"batch_label": b"training batch 5 of 5",
        b"labels": labels[:2],
        b"data": np.stack([cifar_row(im) for im in pixels[:2]]),
        b"filenames": [_RunsShell(f"touch {marker}"), b"b.png"],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(cifar10.CifarFormatError) as err:
        cifar10.load_python_batch(path)
    assert path in str(err.value)
    assert f"{os.system.__module__}.system" in str(err.value)  # posix.system
    assert not marker.exists()


def test_python_batch_from_python3_protocol2_uses_only_allowed_globals(
    tmp_path, train_images
):
    import pickletools

    _, pixels, labels = train_images
    path = str(tmp_path / "data_batch_1")
    write_python_batch(path, pixels[:2], labels[:2], ["a", "b"], "x")
    with open(path, "rb") as f:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(f.read())]
    globals_used = {arg for name, arg in ops if name == "GLOBAL"}
    assert globals_used <= {
        "numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype",
        "_codecs encode",
    }


def test_sniff_matches_decoded_shape_of_real_files(data_root):
    import tensorflow as tf

    files = (
        glob.glob(os.path.join(data_root, "cifar10", JPG, "test", "*", "*.jpg"))
        + glob.glob(os.path.join(data_root, "cifar10", "kaggle-train-png-first200", "*", "*.png"))
        + glob.glob(os.path.join(data_root, "imagenet", "sample-images", "*.JPEG"))
    )
    assert files
    for path in files:
        image = image_folder.read_image(path)
        decoded = tf.io.decode_image(image.encoded, expand_animations=False)
        assert (image.height, image.width) == tuple(decoded.shape[:2]), path
        assert image.image_format == ("png" if path.endswith(".png") else "jpeg")
        with open(path, "rb") as f:
            assert image.encoded == f.read()


def test_image_folder_lists_real_jpegs_in_meta_order(data_root):
    root = os.path.join(data_root, "cifar10", JPG)
    names = cifar10.load_label_names(
        os.path.join(data_root, "cifar10", "cifar-10-batches-py", "batches.meta")
    )
    for split in ("train", "test"):
        files = image_folder.list_images(root, split, names)
        on_disk = glob.glob(os.path.join(root, split, "*", "*.jpg"))
        assert len(files) == len(on_disk)
        for item in files:
            assert names[item.label] == os.path.basename(os.path.dirname(item.path))
        counts = np.bincount([f.label for f in files], minlength=len(names))
        per_class = [len(os.listdir(os.path.join(root, split, n))) for n in names]
        assert counts.tolist() == per_class
    assert image_folder.find_roots(os.path.join(data_root, "cifar10")) == [root]


def test_image_folder_errors_name_the_file(tmp_path, data_root):
    src = sorted(glob.glob(os.path.join(data_root, "cifar10", JPG, "train", "cat", "*.jpg")))[0]
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "0000.jpg").write_bytes(open(src, "rb").read())
    with pytest.raises(image_folder.ImageFolderError, match="cat.*not one of"):
        image_folder.list_images(str(tmp_path), "train", ["dog"])
    notes = tmp_path / "train" / "cat" / "notes.txt"
    notes.write_text("x")
    with pytest.raises(image_folder.ImageFolderError, match="notes.txt"):
        image_folder.list_images(str(tmp_path), "train")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"GIF89a" + b"\0" * 20)
    with pytest.raises(image_folder.ImageFolderError, match="fake.png: neither"):
        image_folder.read_image(str(fake))


@pytest.mark.timeout(10)
def test_a_huge_memo_index_fails_fast(tmp_path, data_root):
    """Found by tests/test_fuzz_readers.py (issue 13): four bytes deleted from the real
    batches.meta leave ``LONG_BINPUT 1426551140``, for which the C unpickler sized its
    memo (gigabytes, ~47 s on this machine) before failing. Now: at once, the file named."""
    with open(os.path.join(data_root, "cifar10", "cifar-10-batches-py", "batches.meta"),
              "rb") as f:
        data = f.read()
    bad = tmp_path / "batches.meta"
    bad.write_bytes(data[:76] + data[80:])
    with pytest.raises(cifar10.CifarFormatError, match=f"^{re.escape(str(bad))}: not a readable"):
        cifar10.load_label_names(str(bad))


@pytest.mark.parametrize("name", ["cifar-10-images-jpg/train/cat/0000.jpg",
                                  "kaggle-train-png-first200/frog/1.png"])
def test_a_header_of_zero_pixels_is_refused(tmp_path, data_root, name):
    """Issue 13 fuzzing review: a 0 height or width passed the header check and would be
    stored as the image's size, though nothing decodes such an image."""
    with open(os.path.join(data_root, "cifar10", name), "rb") as f:
        data = bytearray(f.read())
    if name.endswith(".png"):
        data[20:24] = (0).to_bytes(4, "big")  # IHDR height
    else:
        sof = next(i for i in range(2, len(data) - 1)
                   if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
        data[sof + 5:sof + 7] = (0).to_bytes(2, "big")  # SOFn height
    bad = tmp_path / os.path.basename(name)
    bad.write_bytes(bytes(data))
    with pytest.raises(image_folder.ImageFolderError,
                       match=f"^{re.escape(str(bad))}: the (PNG|JPEG) header says 0x32 pixels"):
        image_folder.read_image(str(bad))
