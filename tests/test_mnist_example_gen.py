"""MNIST ExampleGen executor on the real idx files.

The executor's ``Do`` is run directly, as TFX's own example_gen executor
tests do. To keep it fast the input folders hold plain idx files cut from the
real ``t10k`` files (real pixels, real labels, real idx headers).
"""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from model_garden.components import image_example as ie
from model_garden.components import mnist_example_gen as meg
from model_garden.datasets import SplitSpec, get_dataset
from model_garden.datasets.idx import IdxFormatError, read_idx_pair

N_SUBSET = 500
KEYS = {ie.IMAGE_ENCODED_KEY, ie.IMAGE_FORMAT_KEY, ie.LABEL_KEY, ie.HEIGHT_KEY, ie.WIDTH_KEY}


def _write_idx(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


@pytest.fixture(scope="module")
def real_t10k(mnist_dir):
    return read_idx_pair(
        os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"),
        os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"),
    )


def _subset_dir(root, real_t10k, pairs):
    """Writes ``{prefix: slice}`` of the real t10k set as plain idx files."""
    images, labels = real_t10k
    os.makedirs(root, exist_ok=True)
    for prefix, sl in pairs.items():
        _write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte"), 2051, images[sl])
        _write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte"), 2049, labels[sl])
    return root


def _run(input_base, split: SplitSpec, out_dir):
    component = meg.make_example_gen(input_base, split)
    params = component.exec_properties
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: input_base,
        standard_component_specs.INPUT_CONFIG_KEY: params["input_config"],
        standard_component_specs.OUTPUT_CONFIG_KEY: params["output_config"],
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    meg.Executor().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


def _read_split(examples, split):
    files = sorted(glob.glob(os.path.join(examples.uri, f"Split-{split}", "*")))
    assert files and all(f.endswith(".gz") for f in files), files
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]


def _pixels_to_label(images, labels):
    table = {img.tobytes(): int(lab) for img, lab in zip(images, labels)}
    assert len(table) == len(images)  # no duplicate images in the subset
    return table


def _check_examples(got, table):
    """Every example is one real image, PNG-decoded exactly, with its label."""
    seen = []
    for ex in got:
        f = ex.features.feature
        assert set(f) == KEYS
        assert f[ie.IMAGE_FORMAT_KEY].bytes_list.value == [b"png"]
        assert f[ie.HEIGHT_KEY].int64_list.value == [28]
        assert f[ie.WIDTH_KEY].int64_list.value == [28]
        pixels = tf.io.decode_png(f[ie.IMAGE_ENCODED_KEY].bytes_list.value[0]).numpy()
        assert pixels.shape == (28, 28, 1) and pixels.dtype == np.uint8
        key = pixels[:, :, 0].tobytes()
        assert key in table, "decoded PNG is not one of the real idx images"
        assert f[ie.LABEL_KEY].int64_list.value == [table[key]]
        seen.append(key)
    return seen


@pytest.fixture(scope="module")
def hash_run(tmp_path_factory, real_t10k, mnist_dir):
    root = tmp_path_factory.mktemp("mnist_hash")
    input_base = _subset_dir(str(root / "in"), real_t10k, {"t10k": slice(0, N_SUBSET)})
    # An orphan labels file (no images file): skipped, not read.
    os.symlink(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"),
               os.path.join(input_base, "train-labels-idx1-ubyte.gz"))
    return _run(input_base, SplitSpec.parse("hash"), root / "out")


def test_hash_split_counts_and_exact_pixels(hash_run, real_t10k):
    examples = hash_run
    assert examples.split_names == artifact_utils.encode_split_names(["train", "test"])
    train, test = _read_split(examples, "train"), _read_split(examples, "test")
    assert len(train) + len(test) == N_SUBSET
    assert 0.7 < len(train) / N_SUBSET < 0.9  # 4:1 hash buckets
    table = _pixels_to_label(real_t10k[0][:N_SUBSET], real_t10k[1][:N_SUBSET])
    seen = _check_examples(train + test, table)
    assert sorted(seen) == sorted(table)  # each real image exactly once


def test_hash_split_masks_match_the_executor(hash_run, real_t10k):
    # The benchmarks' plain Keras script trains on hash_split_masks' split:
    # it must be the executor's, example for example.
    images, labels = real_t10k[0][:N_SUBSET], real_t10k[1][:N_SUBSET]
    train, test = meg.hash_split_masks(images, labels, SplitSpec.parse("hash"))
    assert (train ^ test).all()
    table = _pixels_to_label(images, labels)
    for name, mask in (("train", train), ("test", test)):
        got = _check_examples(_read_split(hash_run, name), table)
        assert sorted(got) == sorted(img.tobytes() for img in images[mask])


def test_hash_split_skips_orphan_with_warning(tmp_path, real_t10k, mnist_dir, caplog):
    input_base = _subset_dir(str(tmp_path), real_t10k, {"t10k": slice(0, 10)})
    os.symlink(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"),
               os.path.join(input_base, "train-labels-idx1-ubyte.gz"))
    with caplog.at_level("WARNING"):
        pairs = meg.find_pairs(input_base, meg.HASH_PATTERN, strict=False)
    assert pairs == [(os.path.join(input_base, "t10k-images-idx3-ubyte"),
                      os.path.join(input_base, "t10k-labels-idx1-ubyte"))]
    assert "train-labels-idx1-ubyte.gz has no images" in caplog.text
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        meg.find_pairs(input_base, "train-*", strict=True)


def test_hash_split_on_shared_folder_pairs_the_real_gz_files(mnist_dir):
    pairs = meg.find_pairs(mnist_dir, meg.HASH_PATTERN, strict=False)
    assert pairs == [(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"),
                      os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"))]


def test_hash_split_without_complete_pair_errors(tmp_path, mnist_dir):
    os.symlink(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"),
               tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="no complete pair"):
        meg.find_pairs(str(tmp_path), meg.HASH_PATTERN, strict=False)


def test_official_split_reads_train_and_t10k(tmp_path, real_t10k):
    # "train" here is real t10k images 0..299 renamed; "t10k" is 300..499.
    input_base = _subset_dir(
        str(tmp_path / "in"), real_t10k, {"train": slice(0, 300), "t10k": slice(300, N_SUBSET)}
    )
    examples = _run(input_base, SplitSpec.parse("official"), tmp_path / "out")
    assert examples.split_names == artifact_utils.encode_split_names(["train", "test"])
    images, labels = real_t10k
    train, test = _read_split(examples, "train"), _read_split(examples, "test")
    assert len(train) == 300 and len(test) == 200
    assert sorted(_check_examples(train, _pixels_to_label(images[:300], labels[:300]))) == sorted(
        images[i].tobytes() for i in range(300))
    _check_examples(test, _pixels_to_label(images[300:N_SUBSET], labels[300:N_SUBSET]))


def test_official_split_on_shared_folder_names_missing_train_images(tmp_path, mnist_dir):
    with pytest.raises(FileNotFoundError) as e:
        _run(mnist_dir, SplitSpec.parse("official"), tmp_path / "out")
    msg = str(e.value)
    assert msg.startswith(f"{mnist_dir}: train-images-idx3-ubyte(.gz) is missing")
    assert "train-labels-idx1-ubyte.gz has no images" in msg
    assert "--split hash" in msg


def test_corrupted_file_errors_naming_it(tmp_path, real_t10k, mnist_dir):
    input_base = _subset_dir(str(tmp_path / "in"), real_t10k, {"t10k": slice(0, 20)})
    bad = os.path.join(input_base, "t10k-images-idx3-ubyte")
    with open(bad, "r+b") as f:
        f.truncate(16 + 20 * 784 - 100)
    with pytest.raises(IdxFormatError) as e:
        _run(input_base, SplitSpec.parse("hash"), tmp_path / "out")
    assert bad in str(e.value) and "truncated" in str(e.value)
    assert e.value.path == bad


def test_corrupted_gzip_errors_naming_it(tmp_path, mnist_dir):
    real = os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")
    bad = str(tmp_path / "in" / "t10k-images-idx3-ubyte.gz")
    os.makedirs(os.path.dirname(bad))
    with open(real, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    os.symlink(os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"),
               tmp_path / "in" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(IdxFormatError, match=f"{bad}: truncated gzip"):
        _run(os.path.dirname(bad), SplitSpec.parse("hash"), tmp_path / "out")


@pytest.mark.parametrize("text", ["official", "hash", "hash:9/1"])
def test_make_example_gen_configs(text, mnist_dir):
    split = SplitSpec.parse(text)
    component = meg.make_example_gen(mnist_dir, split)
    assert component.id == "ExampleGen"
    assert component.exec_properties["input_base"] == mnist_dir
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(component.exec_properties["input_config"], input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(component.exec_properties["output_config"], output_config)
    if split.kind == "official":
        assert [(s.name, s.pattern) for s in input_config.splits] == [
            ("train", "train-*"), ("test", "t10k-*")]
        assert not output_config.split_config.splits
    else:
        assert [s.pattern for s in input_config.splits] == ["*-idx?-ubyte*"]
        assert [(s.name, s.hash_buckets) for s in output_config.split_config.splits] == [
            ("train", split.train_buckets), ("test", split.test_buckets)]
    assert isinstance(component.executor_spec.executor_class(), meg.Executor)


def test_registry_points_at_this_factory(mnist_dir):
    component = get_dataset("mnist").make_example_gen(mnist_dir, SplitSpec())
    assert component.id == "ExampleGen"
    assert component.executor_spec.executor_class is meg.Executor


def test_missing_input_folder_named_when_the_pipeline_is_built(tmp_path):
    from model_garden.components.input_spans import InputSpansError

    missing = str(tmp_path / "no-such-mnist")
    with pytest.raises(InputSpansError, match="no-such-mnist: the input folder does not exist"):
        meg.make_example_gen(missing, SplitSpec())


def test_unknown_split_kind_rejected():
    with pytest.raises(ValueError, match="unknown split kind"):
        meg.make_example_gen("/x", SplitSpec(kind="random"))


def test_gz_preferred_over_plain_copy(tmp_path, real_t10k, mnist_dir, caplog):
    input_base = _subset_dir(str(tmp_path), real_t10k, {"t10k": slice(0, 10)})
    gz = os.path.join(input_base, "t10k-labels-idx1-ubyte.gz")
    os.symlink(os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"), gz)
    with caplog.at_level("WARNING"):
        pairs = meg.find_pairs(input_base, "t10k-*", strict=True)
    assert pairs == [(os.path.join(input_base, "t10k-images-idx3-ubyte"), gz)]
    assert "t10k-labels-idx1-ubyte: ignored" in caplog.text
