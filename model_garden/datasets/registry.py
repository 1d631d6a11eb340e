"""The dataset registry: name -> canonical files, sizes and ExampleGen factory.

Pure Python (no TensorFlow): ``model-garden list`` and the recipe registry
import it.

A dataset's raw files are found, in this order:

1. the directory given by ``--data-dir`` (the dataset's own folder);
2. ``$MODEL_GARDEN_DATA/<dataset>`` when that variable is set (the layout of
   ``shared/data``: ``mnist/``, ``census/``, ``cifar10/``, ...);
3. the download cache ``$MODEL_GARDEN_CACHE/<dataset>`` (default
   ``~/.cache/model-garden/<dataset>``), filled from the canonical URLs with
   a sha256 check (see :mod:`model_garden.datasets.download`).

Every ExampleGen factory has the signature
``make_example_gen(input_base: str, split: SplitSpec, input_spans=None) -> BaseComponent`` and
produces the splits ``train`` and ``test``.
"""

import dataclasses
import importlib
import math
import os
import re
from typing import Callable, Dict, Mapping, Optional, Sequence

from model_garden.datasets.download import RemoteFile, download_all

DATA_ENV = "MODEL_GARDEN_DATA"
CACHE_ENV = "MODEL_GARDEN_CACHE"


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """How examples are split into ``train`` and ``test``.

    Attributes:
      kind: ``"official"`` (the dataset's own train and test files) or
        ``"hash"`` (every file present, split by a hash of each example into
        ``train_buckets``:``test_buckets``, TFX's ``SplitConfig``).
      train_buckets: hash buckets for ``train`` (``hash`` only).
      test_buckets: hash buckets for ``test`` (``hash`` only).
    """

    kind: str = "official"
    train_buckets: int = 4
    test_buckets: int = 1

    @classmethod
    def parse(cls, text: str) -> "SplitSpec":
        """Parses ``official``, ``hash`` (= 80/20) or ``hash:TRAIN/TEST``.

        Raises:
          ValueError: for any other text, naming the accepted forms.
        """
        if text == "official":
            return cls()
        if text == "hash":
            return cls("hash", 4, 1)
        m = re.fullmatch(r"hash:(\d+)/(\d+)", text)
        if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
            return cls("hash", int(m.group(1)), int(m.group(2)))
        raise ValueError(
            f"bad split {text!r}: use 'official', 'hash' or 'hash:TRAIN/TEST' "
            "(e.g. hash:80/20)"
        )

    def __str__(self) -> str:
        if self.kind == "official":
            return "official"
        return f"hash:{self.train_buckets}/{self.test_buckets}"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One raw dataset.

    Attributes:
      name: registry key and folder name, e.g. ``"mnist"``.
      files: the canonical files, with sha256 and URLs, that a download
        fetches.
      example_gen: dotted path of the ExampleGen factory
        ``(input_base: str, split: SplitSpec) -> BaseComponent``.
      homepage: the dataset's page (printed by ``model-garden list``).
      num_classes: number of label classes (the model's output units; 2 for
        a binary label).
      split_sizes: number of examples of each official split, ``"train"``
        and ``"test"``, as published (the registry entry cites the page or
        paper each number comes from). With ``--split hash`` the sizes of
        the splits differ; these are the official files'.
    """

    name: str
    files: Sequence[RemoteFile]
    example_gen: str
    homepage: str
    num_classes: int
    split_sizes: Mapping[str, int] = dataclasses.field(hash=False)  # a dict: unhashable

    def steps_per_epoch(self, batch_size: int, split: str = "train") -> int:
        """Batches of ``batch_size`` in one pass over official ``split``.

        ``ceil(split_sizes[split] / batch_size)``: the last, partial batch
        counts as a step (``tf.data`` without ``drop_remainder``).

        Raises:
          ValueError: ``batch_size`` < 1.
          KeyError: ``split`` is not in :attr:`split_sizes`, naming those that are.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        try:
            size = self.split_sizes[split]
        except KeyError:
            raise KeyError(
                f"dataset {self.name!r} has no split {split!r}; known: {sorted(self.split_sizes)}"
            ) from None
        return math.ceil(size / batch_size)

    def make_example_gen(self, input_base: str, split: SplitSpec, input_spans=None):
        """Builds this dataset's ExampleGen component reading ``input_base``.

        ``input_spans``: the ExampleGen's ``input_spans`` property (see
        :class:`model_garden.components.file_example_gen.ExampleGen`).
        """
        module, _, attr = self.example_gen.rpartition(".")
        factory: Callable = getattr(importlib.import_module(module), attr)
        return factory(input_base, split, input_spans=input_spans)


# MNIST: http://yann.lecun.com/exdb/mnist/ ; sha256 as published by
# tensorflow_datasets (image_classification/mnist checksums).
_MNIST_URLS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

# UCI Adult (Becker & Kohavi 1996, CC BY 4.0): the DATA_URL of
# official/r1/wide_deep/census_dataset.py; sha256 of the UCI originals.
_CENSUS_URLS = ("https://archive.ics.uci.edu/ml/machine-learning-databases/adult/",)

DATASETS: Dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        files=(
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                _MNIST_URLS,
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                _MNIST_URLS,
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                _MNIST_URLS,
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                _MNIST_URLS,
            ),
        ),
        example_gen="model_garden.components.mnist_example_gen.make_example_gen",
        homepage="http://yann.lecun.com/exdb/mnist/",
        # http://yann.lecun.com/exdb/mnist/: "a training set of 60,000
        # examples, and a test set of 10,000 examples"; digits 0..9.
        num_classes=10,
        split_sizes={"train": 60_000, "test": 10_000},
    ),
    "census": Dataset(
        name="census",
        files=(
            RemoteFile("adult.data",
                       "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
                       _CENSUS_URLS),
            RemoteFile("adult.test",
                       "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
                       _CENSUS_URLS),
            RemoteFile("adult.names",
                       "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a",
                       _CENSUS_URLS),
        ),
        example_gen="model_garden.components.census_example_gen.make_example_gen",
        homepage="https://archive.ics.uci.edu/dataset/2/adult",
        # adult.names: "48842 instances ... (train=32561, test=16281)"; the
        # class is ">50K, <=50K.".
        num_classes=2,
        split_sizes={"train": 32_561, "test": 16_281},
    ),
    # CIFAR-10, python version; sha256 of the canonical tarball.
    "cifar10": Dataset(
        name="cifar10",
        files=(
            RemoteFile(
                "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                ("https://www.cs.toronto.edu/~kriz/",),
                extract="cifar-10-batches-py",
            ),
        ),
        example_gen="model_garden.components.cifar10_example_gen.make_example_gen",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        # https://www.cs.toronto.edu/~kriz/cifar.html (Krizhevsky 2009):
        # "60000 32x32 colour images in 10 classes ... 50000 training images
        # and 10000 test images" (5 data batches + 1 test batch of 10,000).
        num_classes=10,
        split_sizes={"train": 50_000, "test": 10_000},
    ),
}


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name``.

    Raises:
      KeyError: naming the registered datasets.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


def cache_dir(name: str) -> str:
    """The download cache folder of dataset ``name``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "model-garden"
    )
    return os.path.join(root, name)


def resolve_data_dir(name: str, data_dir: Optional[str] = None) -> str:
    """The folder holding dataset ``name``'s raw files, downloading if needed.

    Args:
      name: a registered dataset name.
      data_dir: an explicit folder (``--data-dir``); used as is.

    Returns:
      An absolute folder path.

    Raises:
      FileNotFoundError: ``data_dir`` or ``$MODEL_GARDEN_DATA/<name>`` is
        given but is not a folder.
      DownloadError: no local copy, and the download failed.
    """
    dataset = get_dataset(name)
    if data_dir:
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"--data-dir {data_dir}: no such folder")
        return os.path.abspath(data_dir)
    root = os.environ.get(DATA_ENV)
    if root:
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"${DATA_ENV}={root} has no folder {name}/ for dataset {name}"
            )
        return os.path.abspath(folder)
    return os.path.abspath(download_all(dataset.files, cache_dir(name)))
