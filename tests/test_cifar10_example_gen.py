"""The CIFAR-10 ExampleGen executor's ``Do()``, run as TFX's executor tests do.

Layouts: the python-version batches and the binary-version batches built
from the real CIFAR-10 JPEGs (see ``test_cifar10_readers``), and the real
JPEG image folder in ``shared/data/cifar10`` read in place.
"""

import collections
import glob
import json
import os
import shutil

import numpy as np
import pytest

from model_garden.components import cifar10_example_gen as gen
from model_garden.components import image_example as ie
from model_garden.datasets import SplitSpec
from tests.test_cifar10_readers import (
    real_split,
    write_binary_batch,
    write_python_batch,
)

JPG = "cifar-10-images-jpg"


def _run_do(input_base, out_dir, split: SplitSpec):
    """Runs Executor.Do with the configs make_example_gen would give it."""
    from tfx.types import standard_artifacts, standard_component_specs as specs

    component = gen.make_example_gen(input_base, split)
    assert component.id == "ExampleGen"
    props = component.exec_properties
    examples = standard_artifacts.Examples()
    examples.uri = out_dir
    exec_properties = {
        specs.INPUT_BASE_KEY: input_base,
        # JSON strings of example_gen_pb2.Input / Output, as TFX passes them.
        specs.INPUT_CONFIG_KEY: props[specs.INPUT_CONFIG_KEY],
        specs.OUTPUT_CONFIG_KEY: props[specs.OUTPUT_CONFIG_KEY],
    }
    gen.Executor().Do({}, {specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


def _read_split(examples, split):
    import tensorflow as tf

    files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))
    assert files, f"no output files for split {split}"
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]


def _features(example):
    f = example.features.feature
    return (
        f[ie.IMAGE_ENCODED_KEY].bytes_list.value[0],
        f[ie.IMAGE_FORMAT_KEY].bytes_list.value[0].decode(),
        f[ie.HEIGHT_KEY].int64_list.value[0],
        f[ie.WIDTH_KEY].int64_list.value[0],
        f[ie.LABEL_KEY].int64_list.value[0],
    )


TF_SLIM_KEYS = {
    ie.IMAGE_ENCODED_KEY, ie.IMAGE_FORMAT_KEY, ie.LABEL_KEY, ie.HEIGHT_KEY, ie.WIDTH_KEY
}


@pytest.fixture(scope="module")
def real(data_root):
    return {s: real_split(data_root, s) for s in ("train", "test")}


@pytest.fixture(scope="module")
def names(data_root):
    from model_garden.datasets import cifar10

    return cifar10.load_label_names(
        os.path.join(data_root, "cifar10", "cifar-10-batches-py", "batches.meta")
    )


def _interleaved(paths):
    """Order images 0000 of every class, then 0001, ... (mixed batches)."""
    return sorted(range(len(paths)), key=lambda i: (os.path.basename(paths[i]), paths[i]))


def _pixel_key(pixels):
    return pixels.tobytes()


def _check_png_split(examples, split, paths, pixels, labels):
    import tensorflow as tf

    got = _read_split(examples, split)
    assert len(got) == len(paths)
    expected = collections.Counter(
        (_pixel_key(p), int(l)) for p, l in zip(pixels, labels)
    )
    seen = collections.Counter()
    for example in got:
        assert set(example.features.feature) == TF_SLIM_KEYS
        encoded, fmt, height, width, label = _features(example)
        assert (fmt, height, width) == ("png", 32, 32)
        decoded = tf.io.decode_png(encoded).numpy()
        seen[(_pixel_key(decoded), label)] += 1
    assert seen == expected  # every pixel and label survives exactly


def test_python_batches_official_split(tmp_path, data_root, real, names):
    base = tmp_path / "cifar10"
    folder = base / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    shutil.copy(
        os.path.join(data_root, "cifar10", "cifar-10-batches-py", "batches.meta"), folder
    )
    paths, pixels, labels = real["train"]
    order = _interleaved(paths)
    for b, chunk in enumerate(np.array_split(order, 5), start=1):
        write_python_batch(
            str(folder / f"data_batch_{b}"), pixels[chunk],
            [labels[i] for i in chunk],
            [os.path.basename(paths[i]) for i in chunk], f"training batch {b} of 5",
        )
    tpaths, tpixels, tlabels = real["test"]
    write_python_batch(str(folder / "test_batch"), tpixels, tlabels,
                       [os.path.basename(p) for p in tpaths], "testing batch 1 of 1")

    examples = _run_do(str(base), str(tmp_path / "out"), SplitSpec())
    assert json.loads(examples.split_names) == ["train", "test"]
    _check_png_split(examples, "train", paths, pixels, labels)
    _check_png_split(examples, "test", tpaths, tpixels, tlabels)
    assert gen.read_label_names(examples.uri) == names
    assert json.loads(examples.get_string_custom_property("label_names")) == names


def test_binary_batches_hash_split(tmp_path, data_root, real, names):
    base = tmp_path / "cifar10"
    folder = base / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    paths, pixels, labels = real["train"]
    for b, chunk in enumerate(np.array_split(_interleaved(paths), 5), start=1):
        write_binary_batch(str(folder / f"data_batch_{b}.bin"), pixels[chunk],
                           [labels[i] for i in chunk])
    tpaths, tpixels, tlabels = real["test"]
    write_binary_batch(str(folder / "test_batch.bin"), tpixels, tlabels)

    examples = _run_do(str(base), str(tmp_path / "out"), SplitSpec.parse("hash:4/1"))
    assert json.loads(examples.split_names) == ["train", "test"]
    train, test = _read_split(examples, "train"), _read_split(examples, "test")
    assert len(train) + len(test) == len(paths) + len(tpaths)
    assert len(train) > len(test) > 0
    all_pixels = np.concatenate([pixels, tpixels])
    all_labels = list(labels) + list(tlabels)
    expected = collections.Counter(
        (_pixel_key(p), int(l)) for p, l in zip(all_pixels, all_labels)
    )
    import tensorflow as tf

    seen = collections.Counter(
        (_pixel_key(tf.io.decode_png(e[0]).numpy()), e[4])
        for e in map(_features, train + test)
    )
    assert seen == expected
    assert gen.read_label_names(examples.uri) == names


def test_real_jpeg_image_folder_official_split(tmp_path, data_root, names):
    base = os.path.join(data_root, "cifar10")  # read in place, never written
    layout = gen.detect_layout(base)
    assert (layout.kind, layout.folder) == ("image_folder", JPG)
    examples = _run_do(base, str(tmp_path / "out"), SplitSpec())
    assert json.loads(examples.split_names) == ["train", "test"]
    for split in ("train", "test"):
        files = sorted(glob.glob(os.path.join(base, JPG, split, "*", "*.jpg")))
        expected = collections.Counter()
        for path in files:
            with open(path, "rb") as f:
                expected[(f.read(), names.index(os.path.basename(os.path.dirname(path))))] += 1
        got = _read_split(examples, split)
        assert len(got) == len(files)
        seen = collections.Counter()
        for example in got:
            assert set(example.features.feature) == TF_SLIM_KEYS
            encoded, fmt, height, width, label = _features(example)
            assert (fmt, height, width) == ("jpeg", 32, 32)
            seen[(encoded, label)] += 1
        assert seen == expected  # original bytes, label from the class folder
    assert gen.read_label_names(examples.uri) == names


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        gen.detect_layout(str(tmp_path))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"")
    with pytest.raises(ValueError, match="missing.*data_batch_2.*test_batch"):
        gen.detect_layout(str(tmp_path))
