"""The dataset registry's sizes and classes against the real files, and its helpers.

The numbers in :data:`model_garden.datasets.DATASETS` are the published ones
(each entry cites its page); here they are checked against the real data in
``$MODEL_GARDEN_DATA`` where shared/data has the whole split
(shared/data/PROVENANCE.md): MNIST's two label files (the train images are
missing, but the train label file holds every train example's label), the
whole UCI Adult ``adult.data`` / ``adult.test``, and CIFAR-10's
``batches.meta`` (its batches are absent; the image copies are subsets, so
only the class count can be checked).
"""

import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from model_garden import datasets
from model_garden.datasets import DATASETS, census_csv, cifar10, get_dataset
from model_garden.datasets.idx import LABELS_MAGIC, read_idx

MNIST_LABEL_FILES = {"train": "train-labels-idx1-ubyte.gz", "test": "t10k-labels-idx1-ubyte.gz"}
CENSUS_FILES = {"train": "adult.data", "test": "adult.test"}


def test_every_dataset_has_classes_and_official_split_sizes():
    assert sorted(DATASETS) == ["census", "cifar10", "flowers", "imagenet", "mnist"]
    for name, d in DATASETS.items():
        assert d.name == name
        assert isinstance(d.num_classes, int) and d.num_classes >= 2, name
        assert set(d.split_sizes) == {"train", "test"}, name
        assert all(isinstance(n, int) and n > 0 for n in d.split_sizes.values()), name
        assert d.homepage.startswith("http"), name


@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_sizes_are_the_label_files_counts(mnist_dir, split):
    path = os.path.join(mnist_dir, MNIST_LABEL_FILES[split])
    with gzip.open(path, "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))  # the idx header
    assert magic == LABELS_MAGIC
    labels = read_idx(path, LABELS_MAGIC)  # checks the data holds `count` labels
    assert count == labels.shape[0] == get_dataset("mnist").split_sizes[split]
    assert len(np.unique(labels)) == get_dataset("mnist").num_classes


@pytest.mark.parametrize("split", ["train", "test"])
def test_census_sizes_are_the_rows_of_the_real_files(data_root, split):
    result = census_csv.read_file(os.path.join(data_root, "census", CENSUS_FILES[split]))
    assert result.num_dropped == 0
    assert len(result.rows) == get_dataset("census").split_sizes[split]
    labels = {row[census_csv.LABEL_KEY] for row in result.rows}
    assert len(labels) == get_dataset("census").num_classes


def test_cifar10_classes_are_the_label_names_of_batches_meta(data_root):
    meta = os.path.join(data_root, "cifar10", cifar10.PY_DIR, cifar10.PY_META)
    names = cifar10.load_label_names(meta)
    assert names[0] == "airplane" and names[-1] == "truck"
    assert len(names) == get_dataset("cifar10").num_classes


def test_flowers_classes_are_the_folders_of_the_real_photos(data_root):
    folders = sorted(n for n in os.listdir(os.path.join(data_root, "flowers", "flower_photos"))
                     if os.path.isdir(os.path.join(data_root, "flowers", "flower_photos", n)))
    assert len(folders) == get_dataset("flowers").num_classes == 5


def test_imagenet_classes_are_the_mapping_file_plus_background(data_root):
    from model_garden.datasets import imagenet

    mapping = imagenet.read_synset_mapping(
        os.path.join(data_root, "imagenet", imagenet.SYNSET_MAPPING))
    assert mapping.num_classes == get_dataset("imagenet").num_classes == 1001


def test_imagenet_without_a_local_copy_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="without an account.*--data-dir"):
        datasets.resolve_data_dir("imagenet")
    assert not os.listdir(tmp_path)  # nothing was fetched or created


def test_package_and_readers_import_without_tensorflow():
    code = (
        "import sys\n"
        "import model_garden.datasets, model_garden.datasets.census_csv, "
        "model_garden.datasets.cifar10, model_garden.datasets.idx, "
        "model_garden.datasets.image_folder, model_garden.datasets.download, "
        "model_garden.datasets.imagenet, model_garden.datasets.image_layouts\n"
        "bad = sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


def test_package_reexports_the_registry():
    from model_garden.datasets import registry

    assert "resolve_data_dir" in datasets.__all__
    for name in datasets.__all__:
        assert getattr(datasets, name) is getattr(registry, name), name
