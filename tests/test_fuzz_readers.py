"""Property-based fuzzing (hypothesis) of every reader of raw data, on mutated REAL files.

Each test takes a real file from ``shared/data`` (or, for CIFAR's batches,
which ``shared/data`` lacks, batches built exactly as the canonical ones from
the real lossless CIFAR-10 PNGs), applies 1-3 mutations (truncate at an
offset, flip bytes, splice a chunk from elsewhere over another place, repeat
a chunk, delete a chunk; offsets drawn anywhere or in the header), writes the
result into ``tmp_path`` and reads it. Every case must end in one of:

* the reader's own error type, its message naming the file;
* data that is correct: counts equal what the header (or the text) says,
  shapes, dtypes and label ranges agree; for bytes flipped inside a pixel
  payload the pixels may legitimately differ, the structure may not.

Anything else fails the test: another exception type, a silent wrong count
or a hang (each example has a hypothesis ``deadline``, each test a
pytest-timeout).

Bounded in CI: ``$MODEL_GARDEN_FUZZ_EXAMPLES`` cases per reader (default 40,
the whole file in well under a minute), derandomized so that CI is
reproducible. ``make fuzz`` runs ``MODEL_GARDEN_FUZZ_EXAMPLES`` (default
2,000) random cases per reader and prints, per reader, the cases tried and
how they ended.
"""

import collections
import csv
import gzip
import io
import os
import pickle
import re
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_garden.datasets import census_csv, cifar10, idx, image_folder, image_layouts, imagenet

EXAMPLES = int(os.environ.get("MODEL_GARDEN_FUZZ_EXAMPLES", "40"))
RANDOM = os.environ.get("MODEL_GARDEN_FUZZ_RANDOM", "") not in ("", "0")
# A whole test's limit: generous per case (the machine is shared), never unbounded.
TEST_TIMEOUT = 120 + 2 * EXAMPLES

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    derandomize=not RANDOM,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)

#: reader -> Counter of outcomes ("error: <Type>", "data"), printed at the end.
OUTCOMES = collections.defaultdict(collections.Counter)

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    lines = []
    for reader, c in sorted(OUTCOMES.items()):
        cases = c.pop("cases", 0)
        failures = cases - sum(c.values())  # begun, but ended in neither outcome
        lines.append(f"fuzz {reader}: {cases} cases, {failures} failures ("
                     + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + ")")
    text = "\n".join(lines)
    print("\n" + text)
    report = os.environ.get("MODEL_GARDEN_FUZZ_REPORT")
    if report:
        with open(report, "a") as f:
            f.write(text + "\n")


def _begin(reader):
    OUTCOMES[reader]["cases"] += 1


# --- mutations ---------------------------------------------------------------

_OFFSET = st.one_of(st.integers(0, 96), st.integers(0, 2**31 - 1))
_LENGTH = st.one_of(st.integers(1, 16), st.integers(1, 4096))
_OP = st.one_of(
    st.tuples(st.just("truncate"), _OFFSET),
    st.tuples(st.just("flip"), _OFFSET, st.integers(1, 255), st.integers(1, 4)),
    st.tuples(st.just("splice"), _OFFSET, _OFFSET, _LENGTH),
    st.tuples(st.just("repeat"), _OFFSET, _LENGTH, st.integers(1, 3)),
    st.tuples(st.just("delete"), _OFFSET, _LENGTH),
)
MUTATIONS = st.lists(_OP, min_size=1, max_size=3)


def mutate(data: bytes, ops) -> bytes:
    """``data`` with each of ``ops`` applied in turn (offsets taken modulo the length)."""
    out = bytearray(data)
    for op in ops:
        n = len(out)
        if n == 0:
            break
        kind = op[0]
        if kind == "truncate":
            del out[op[1] % n:]
        elif kind == "flip":
            _, at, mask, count = op
            for k in range(count):  # a run of flipped bytes
                out[(at + k) % n] ^= mask
        elif kind == "splice":  # a chunk from elsewhere over another place
            _, src, dst, length = op
            src, dst = src % n, dst % n
            chunk = out[src:src + length]
            out[dst:dst + len(chunk)] = chunk
        elif kind == "repeat":
            _, at, length, times = op
            at %= n
            chunk = out[at:at + length]
            out[at:at] = chunk * times
        elif kind == "delete":
            _, at, length = op
            del out[at % n:at % n + length]
    return bytes(out)


def touched(ops, size):
    """The smallest offset any of ``ops`` changes in a ``size``-byte file (``size``: none)."""
    low = size
    n = size
    for op in ops:
        if n == 0:
            break
        kind = op[0]
        if kind == "splice":
            low = min(low, op[2] % n)
        elif kind == "repeat":
            low = min(low, op[1] % n)
            n += min(op[2], n - op[1] % n) * op[3]
        else:
            low = min(low, op[1] % n)
            if kind == "truncate":
                n = op[1] % n
            elif kind == "delete":
                n -= min(op[2], n - op[1] % n)
    return low


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _expect_own_error(error, own_type, path, reader):
    """The reader's own error, naming the file; records the outcome."""
    assert type(error) is own_type or isinstance(error, own_type), (
        f"{reader}: {type(error).__name__} instead of {own_type.__name__}: {error}")
    assert path in str(error), f"{reader}: the message does not name {path}: {error}"
    OUTCOMES[reader][f"error: {type(error).__name__}"] += 1


# --- idx (MNIST) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_files(mnist_dir):
    out = {}
    for name in ("t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "train-labels-idx1-ubyte.gz"):
        with open(os.path.join(mnist_dir, name), "rb") as f:
            raw = f.read()
        out[name] = (raw, gzip.decompress(raw))
    return out


def _check_idx_data(array, payload):
    """``array`` is exactly what the idx ``payload``'s header says, and holds its bytes."""
    magic = int.from_bytes(payload[:4], "big")
    rank = {idx.IMAGES_MAGIC: 3, idx.LABELS_MAGIC: 1}[magic]
    dims = tuple(int.from_bytes(payload[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
    header = 4 + 4 * rank
    assert array.dtype == np.uint8 and array.shape == dims
    assert len(payload) == header + int(np.prod(dims, dtype=object))  # no silent wrong count
    assert array.tobytes() == payload[header:]


_IDX_NAMES = ("t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "train-labels-idx1-ubyte.gz")


@FUZZ
@given(name=st.sampled_from(_IDX_NAMES), ops=MUTATIONS, payload=st.booleans(),
       plain=st.booleans())
def test_fuzz_idx(tmp_path, mnist_files, name, ops, payload, plain):
    """Mutated compressed bytes, or a mutated payload re-gzipped (or written plain)."""
    _begin("idx")
    raw, decompressed = mnist_files[name]
    if payload:
        data = mutate(decompressed, ops)
        path = _write(tmp_path, name[:-3] if plain else name,
                      data if plain else gzip.compress(data, compresslevel=1))
    else:
        data = None
        path = _write(tmp_path, name, mutate(raw, ops))
    expect = idx.LABELS_MAGIC if "labels" in name else idx.IMAGES_MAGIC
    try:
        array = idx.read_idx(path, expect)
    except idx.IdxFormatError as e:
        _expect_own_error(e, idx.IdxFormatError, path, "idx")
        assert e.path == path
        return
    if data is None:  # the compressed bytes changed but still decompress (e.g. header flags)
        with open(path, "rb") as f:
            data = gzip.decompress(f.read())
    _check_idx_data(array, data)
    OUTCOMES["idx"]["data"] += 1


@FUZZ
@given(ops=MUTATIONS)
def test_fuzz_idx_pair(tmp_path, mnist_files, mnist_dir, ops):
    """A mutated labels file against the real images: counts must agree, labels lie in 0..9."""
    _begin("idx pair")
    _, labels = mnist_files["t10k-labels-idx1-ubyte.gz"]
    path = _write(tmp_path, "t10k-labels-idx1-ubyte", mutate(labels, ops))
    images_path = os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")
    try:
        images, got = idx.read_idx_pair(images_path, path)
    except idx.IdxFormatError as e:
        _expect_own_error(e, idx.IdxFormatError, path, "idx pair")
        return
    assert images.shape == (10_000, 28, 28) and got.shape == (10_000,)
    assert got.dtype == np.uint8 and int(got.max()) <= 9
    OUTCOMES["idx pair"]["data"] += 1


# --- census CSV ------------------------------------------------------------------

_CENSUS_PREFIX = 64 * 1024  # bytes of each real file, cut at a line end


@pytest.fixture(scope="module")
def census_files(data_root):
    out = {}
    for name in ("adult.data", "adult.test"):
        with open(os.path.join(data_root, "census", name), "rb") as f:
            data = f.read(_CENSUS_PREFIX)
        out[name] = data[:data.rindex(b"\n") + 1]
    return out


def _census_oracle(data: bytes):
    """What the Adult format says of ``data``: ("rows", rows) or ("error", line number).

    Written apart from the reader, from the format's rules (module docstring
    of census_csv): lines end at \\n; a BOM may start the file; blank and
    ``|`` lines are skipped; 15 fields split at ','; six plain decimal
    integers; no empty field; the label one of <=50K / >50K (a '.' after it).
    """
    rows = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "error", number
        text = text.rstrip("\r\n")
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip() or text.lstrip().startswith("|"):
            continue
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != 15 or not all(fields):
            return "error", number
        row = dict(zip(census_csv.COLUMNS, fields))
        for name in census_csv.NUMERIC_COLUMNS:
            if not re.fullmatch(r"-?[0-9]+", row[name]):
                return "error", number
            row[name] = int(row[name])
        label = row["income_bracket"]
        label = label[:-1] if label.endswith(".") else label
        if label not in ("<=50K", ">50K"):
            return "error", number
        row["income_bracket"] = label
        rows.append(row)
    return "rows", rows


@FUZZ
@given(name=st.sampled_from(["adult.data", "adult.test"]), ops=MUTATIONS,
       bom=st.booleans(), crlf=st.booleans())
def test_fuzz_census_csv(tmp_path, census_files, name, ops, bom, crlf):
    _begin("census csv")
    data = census_files[name]
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    data = mutate((b"\xef\xbb\xbf" if bom else b"") + data, ops)
    path = _write(tmp_path, name, data)
    kind, expected = _census_oracle(data)
    try:
        result = census_csv.read_file(path)
    except census_csv.CensusFormatError as e:
        _expect_own_error(e, census_csv.CensusFormatError, path, "census csv")
        assert e.path == path and (kind, e.line) == ("error", expected), (kind, e)
        return
    assert kind == "rows", f"the reader accepted what line {expected} makes bad"
    assert result.rows == expected  # the count and every value
    OUTCOMES["census csv"]["data"] += 1


# --- CIFAR-10 batches ---------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar_batches(data_root):
    """A python (pickle, protocol 2) and a binary batch of the 200 real lossless PNGs.

    ``kaggle-train-png-first200/<class>/<n>.png`` is row n-1 of the
    canonical ``data_batch_1`` (PROVENANCE.md); labels in batches.meta order.
    """
    from PIL import Image

    root = os.path.join(data_root, "cifar10")
    names = cifar10.load_label_names(os.path.join(root, "cifar-10-batches-py", "batches.meta"))
    folder = os.path.join(root, "kaggle-train-png-first200")
    items = sorted((int(f[:-4]), c) for c in os.listdir(folder)
                   if os.path.isdir(os.path.join(folder, c))
                   for f in os.listdir(os.path.join(folder, c)))
    rows, labels, filenames = [], [], []
    for n, c in items:
        pixels = np.asarray(Image.open(os.path.join(folder, c, f"{n}.png")).convert("RGB"))
        rows.append(np.concatenate([pixels[:, :, k].reshape(-1) for k in range(3)]))
        labels.append(names.index(c))
        filenames.append(f"{n}.png".encode())
    data = np.stack(rows).astype(np.uint8)
    batch = {b"batch_label": b"training batch 1 of 5 (first 200)", b"labels": labels,
             b"data": data, b"filenames": filenames}
    python = pickle.dumps(batch, protocol=2)
    binary = b"".join(bytes([label]) + row.tobytes() for label, row in zip(labels, data))
    return {"python": python, "binary": binary, "count": len(labels)}


def _check_cifar(batch, count):
    assert batch.images.dtype == np.uint8 and batch.images.shape == (count, 32, 32, 3)
    assert batch.labels.dtype == np.int64 and batch.labels.shape == (count,)
    assert batch.labels.min() >= 0 and batch.labels.max() <= 9
    assert len(batch.filenames) in (0, count)


@FUZZ
@given(ops=MUTATIONS)
def test_fuzz_cifar_python_batch(tmp_path, cifar_batches, ops):
    _begin("cifar python")
    path = _write(tmp_path, "data_batch_1", mutate(cifar_batches["python"], ops))
    try:
        batch = cifar10.load_python_batch(path)
    except cifar10.CifarFormatError as e:
        _expect_own_error(e, cifar10.CifarFormatError, path, "cifar python")
        return
    # The pickled array carries its own shape: a batch read is a whole one.
    _check_cifar(batch, cifar_batches["count"])
    OUTCOMES["cifar python"]["data"] += 1


@FUZZ
@given(ops=MUTATIONS)
def test_fuzz_cifar_binary_batch(tmp_path, cifar_batches, ops):
    _begin("cifar binary")
    data = mutate(cifar_batches["binary"], ops)
    path = _write(tmp_path, "data_batch_1.bin", data)
    try:
        batch = cifar10.load_binary_batch(path)
    except cifar10.CifarFormatError as e:
        _expect_own_error(e, cifar10.CifarFormatError, path, "cifar binary")
        return
    # No header: the count is the file's size in records (a cut exactly at a
    # record boundary is a smaller batch, which the format cannot tell).
    assert len(data) % cifar10.RECORD_BYTES == 0
    _check_cifar(batch, len(data) // cifar10.RECORD_BYTES)
    OUTCOMES["cifar binary"]["data"] += 1


@FUZZ
@given(ops=MUTATIONS)
def test_fuzz_cifar_meta(tmp_path, data_root, ops):
    _begin("cifar meta")
    with open(os.path.join(data_root, "cifar10", "cifar-10-batches-py", "batches.meta"),
              "rb") as f:
        path = _write(tmp_path, "batches.meta", mutate(f.read(), ops))
    try:
        names = cifar10.load_label_names(path)
    except cifar10.CifarFormatError as e:
        _expect_own_error(e, cifar10.CifarFormatError, path, "cifar meta")
        return
    assert names and all(isinstance(n, str) for n in names)
    OUTCOMES["cifar meta"]["data"] += 1


# --- image headers -----------------------------------------------------------------

def _real_images(data_root):
    return {
        "cifar jpeg": os.path.join(data_root, "cifar10", "cifar-10-images-jpg", "train",
                                   "cat", "0000.jpg"),
        "cifar png": os.path.join(data_root, "cifar10", "kaggle-train-png-first200", "frog",
                                  "1.png"),
        "flower jpeg": sorted(
            os.path.join(data_root, "flowers", "flower_photos", "daisy", f)
            for f in os.listdir(os.path.join(data_root, "flowers", "flower_photos", "daisy")))[0],
        "imagenet grayscale jpeg": os.path.join(data_root, "imagenet", "sample-images",
                                                "n03908714_pencil_sharpener.JPEG"),
    }


@pytest.fixture(scope="module")
def real_images(data_root):
    out = {}
    for key, path in _real_images(data_root).items():
        with open(path, "rb") as f:
            data = f.read()
        out[key] = (os.path.basename(path), data, image_folder.sniff_image(data, path))
    return out


def _header_end(data: bytes, kind: str) -> int:
    """Bytes up to the end of the shape header (PNG IHDR's colour type, JPEG SOFn's
    component count) in the real file."""
    if kind == "png":
        return 26
    i = 2
    while True:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in image_folder._SOF_MARKERS:
            return i + 2 + 8
        i += 2 + length


@FUZZ
@given(key=st.sampled_from(["cifar jpeg", "cifar png", "flower jpeg",
                            "imagenet grayscale jpeg"]), ops=MUTATIONS)
def test_fuzz_image_headers(tmp_path, real_images, key, ops):
    _begin("image header")
    name, data, original = real_images[key]
    path = _write(tmp_path, name, mutate(data, ops))
    try:
        image = image_folder.read_image(path)
    except image_folder.ImageFolderError as e:
        _expect_own_error(e, image_folder.ImageFolderError, path, "image header")
        return
    assert image.image_format in ("png", "jpeg")
    assert image.height >= 1 and image.width >= 1 and image.channels in (1, 2, 3, 4)
    if touched(ops, len(data)) >= _header_end(data, original[0]):
        assert (image.image_format, *image.shape) == original
    OUTCOMES["image header"]["data"] += 1


@pytest.fixture(scope="module")
def tf_decode():
    import tensorflow as tf

    return lambda data: tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


@FUZZ
@given(key=st.sampled_from(["cifar jpeg", "cifar png", "imagenet grayscale jpeg"]),
       ops=MUTATIONS)
def test_fuzz_image_normalize(tmp_path, real_images, tf_decode, key, ops):
    """The image ExampleGen's decode-once check: BadImageError, or a decodable RGB image."""
    _begin("image normalize")
    from model_garden.components import image_normalize

    name, data, _ = real_images[key]
    mutated = mutate(data, ops)
    path = _write(tmp_path, name, mutated)
    try:
        image = image_normalize.normalize_image(mutated, path)
    except image_normalize.BadImageError as e:
        _expect_own_error(e, image_normalize.BadImageError, path, "image normalize")
        return
    pixels = tf_decode(image.encoded)
    assert pixels.dtype == np.uint8 and pixels.shape == (image.height, image.width, 3)
    assert image.image_format in ("png", "jpeg")
    OUTCOMES["image normalize"]["data"] += 1


# --- Slim image folder layouts (ImageNet label files) -----------------------------------

@pytest.fixture(scope="module")
def imagenet_files(imagenet_dir):
    out = {}
    for name in (imagenet.SYNSET_MAPPING, imagenet.SAMPLE_LABELS):
        with open(os.path.join(imagenet_dir, name), "rb") as f:
            out[name] = f.read()
    out["images"] = sorted(os.listdir(os.path.join(imagenet_dir, "sample-images")))
    return out


def _text_lines(data: bytes):
    """The non-blank lines of ``data`` as text (or None when it is not UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return [line for line in io.StringIO(text, newline="") if line.strip()]


@FUZZ
@given(ops=MUTATIONS, offset=st.integers(0, 1))
def test_fuzz_synset_mapping(tmp_path, imagenet_files, ops, offset):
    _begin("synset mapping")
    data = mutate(imagenet_files[imagenet.SYNSET_MAPPING], ops)
    path = _write(tmp_path, imagenet.SYNSET_MAPPING, data)
    try:
        label_map = imagenet.read_synset_mapping(path, offset)
    except imagenet.ImageNetFormatError as e:
        _expect_own_error(e, imagenet.ImageNetFormatError, path, "synset mapping")
        return
    lines = _text_lines(data)
    assert lines is not None
    assert len(label_map.synsets) == len(label_map.names) == len(lines)  # no line dropped
    assert list(label_map.synsets) == sorted(set(label_map.synsets))
    assert all(imagenet.SYNSET.fullmatch(s) for s in label_map.synsets)
    assert label_map.num_classes == len(lines) + 1 - offset
    OUTCOMES["synset mapping"]["data"] += 1


@FUZZ
@given(ops=MUTATIONS)
def test_fuzz_sample_labels_csv(tmp_path, imagenet_files, ops):
    _begin("labels csv")
    data = mutate(imagenet_files[imagenet.SAMPLE_LABELS], ops)
    path = _write(tmp_path, imagenet.SAMPLE_LABELS, data)
    try:
        labels = imagenet.read_validation_labels(path)
    except imagenet.ImageNetFormatError as e:
        _expect_own_error(e, imagenet.ImageNetFormatError, path, "labels csv")
        return
    rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))][1:]
    rows = [r for r in rows if r]
    assert len(labels) == len(rows)  # every row is one image, none dropped or doubled
    assert all(imagenet.SYNSET.fullmatch(s) for s in labels.values())
    OUTCOMES["labels csv"]["data"] += 1


@FUZZ
@given(target=st.sampled_from([imagenet.SYNSET_MAPPING, imagenet.SAMPLE_LABELS]),
       ops=MUTATIONS)
def test_fuzz_imagenet_layout(tmp_path, imagenet_dir, imagenet_files, target, ops):
    """The Slim ImageNet sample layout with one of its label files mutated, listed whole."""
    _begin("imagenet layout")
    base = tmp_path / "imagenet"
    (base / image_layouts.IMAGENET_SAMPLE_DIR).mkdir(parents=True, exist_ok=True)
    for image in imagenet_files["images"]:
        link = base / image_layouts.IMAGENET_SAMPLE_DIR / image
        if not link.exists():
            link.symlink_to(os.path.join(imagenet_dir, "sample-images", image))
    for name in (imagenet.SYNSET_MAPPING, imagenet.SAMPLE_LABELS):
        data = imagenet_files[name]
        (base / name).write_bytes(mutate(data, ops) if name == target else data)
    path = str(base / target)
    try:
        layout = image_layouts.find_layout("imagenet", str(base))
        images = list(layout.images())
    except (image_layouts.LayoutError, imagenet.ImageNetFormatError) as e:
        _expect_own_error(e, type(e), path if target in str(e) else str(base), "imagenet layout")
        return
    assert len(images) == len(imagenet_files["images"])  # every image once, labelled
    for item in images:
        assert 1 <= item.label < layout.label_map.num_classes
        assert layout.label_names[item.label] == item.text
        assert layout.label_map.label(item.synset) == item.label
    OUTCOMES["imagenet layout"]["data"] += 1

