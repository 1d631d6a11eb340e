"""Shared test fixtures: the real raw data in ../shared/data.

Tests read the real files through ``$MODEL_GARDEN_DATA`` (set by the
Makefile and .ci/run to ``../shared/data``); without it they use the
``shared/data`` folder beside the checkout. A missing data folder is an
error, never a skip.
"""

import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_HERE = os.path.dirname(os.path.abspath(__file__))


def _data_root() -> str:
    root = os.environ.get("MODEL_GARDEN_DATA") or os.path.join(
        _HERE, "..", "..", "shared", "data"
    )
    root = os.path.abspath(root)
    if not os.path.isfile(os.path.join(root, "PROVENANCE.md")):
        raise RuntimeError(
            f"real test data not found at {root}: set MODEL_GARDEN_DATA to shared/data"
        )
    return root


@pytest.fixture(scope="session")
def data_root() -> str:
    """Absolute path of the shared real data folder (``shared/data``)."""
    return _data_root()


@pytest.fixture(scope="session")
def mnist_dir(data_root) -> str:
    """The real MNIST idx files (10k test set + train labels)."""
    return os.path.join(data_root, "mnist")


@pytest.fixture(scope="session")
def imagenet_dir(data_root) -> str:
    """The real ImageNet sample: 100 images, ``LOC_synset_mapping.txt``, its csv."""
    return os.path.join(data_root, "imagenet")


@pytest.fixture(scope="session")
def flower_photo(data_root):
    """``flower_photo(class_name)``: the first real photo of that class, decoded (uint8 [H, W, 3])."""
    import glob

    def load(class_name: str):
        import tensorflow as tf

        path = sorted(glob.glob(os.path.join(data_root, "flowers", "flower_photos", class_name,
                                             "*.jpg")))[0]
        return tf.io.decode_jpeg(tf.io.read_file(path), channels=3)

    return load
