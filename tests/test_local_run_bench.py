"""The fast parts of ``benchmarks/local_run.py``: its data for TFX's example, its commands.

The benchmark's runs themselves take minutes and are measured by hand
(``make bench``); these check that what it runs is what it says it runs.
"""

import os
import re
import sys

import numpy as np
import tensorflow as tf

from model_garden.datasets.idx import read_idx_pair

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import local_run  # noqa: E402
from benchmarks.common import REPO  # noqa: E402


def test_tfx_example_data_is_the_first_1000_t10k_digits_in_its_format(tmp_path, mnist_dir,
                                                                       monkeypatch):
    monkeypatch.setenv("MODEL_GARDEN_DATA", os.path.dirname(mnist_dir))
    path = str(tmp_path / "mnist.tfrecord")
    assert local_run.write_tfx_example_data(path) == 1000
    records = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    images, labels = read_idx_pair(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"),
                                   os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"))
    assert len(records) == 1000
    for example, pixels, label in zip(records, images, labels):
        f = example.features.feature
        assert set(f) == {"image_floats", "image_class"}  # mnist_utils_native_keras_base keys
        floats = np.array(f["image_floats"].float_list.value)
        assert floats.shape == (784,) and floats.min() >= -0.5 and floats.max() <= 0.5
        np.testing.assert_allclose(floats, pixels.reshape(-1) / 255.0 - 0.5, atol=1e-6)
        assert list(f["image_class"].int64_list.value) == [label]


def test_tfx_example_files_exist_and_keep_their_settings():
    files = local_run.tfx_example_files()
    text = open(files["pipeline"]).read()
    assert os.path.isfile(files["module"])
    # What the benchmark's docstring and README say the example runs with.
    for setting in ("num_steps=5000", "num_steps=100", "--direct_running_mode=multi_processing",
                    "_pipeline_name = 'mnist_native_keras'", "accuracy_threshold: float = 0.8",
                    "os.environ['HOME'], 'mnist'"):
        assert setting in text, setting


def test_demo_command_is_the_makefiles(tmp_path):
    makefile = open(os.path.join(REPO, "Makefile")).read()
    recipe = re.search(r"^demo:.*\n\t\S*model-garden (.*)$", makefile, re.M).group(1)
    want = recipe.replace("$(OUTPUT)", str(tmp_path)).split()
    assert local_run.demo_command(str(tmp_path))[3:] == want
    assert local_run.demo_command(str(tmp_path), "in_memory")[-2:] == [
        "--direct-running-mode", "in_memory"]
