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
import os
import re
from typing import Callable, Mapping, Optional, Sequence, Tuple

from model_garden.datasets.download import DownloadError, RemoteFile, download_all
from model_garden.datasets.image_layouts import IMAGENET_HOWTO
from model_garden.registry import Registry

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
        ``(input_base: str, split: SplitSpec) -> BaseComponent``; default
        ``model_garden.components.<name>_example_gen.make_example_gen``.
      homepage: the dataset's page (printed by ``model-garden list``).
      num_classes: number of label classes (the model's output units; 2 for
        a binary label).
      split_sizes: number of examples of each official split, ``"train"``
        and ``"test"``, as published (the registry entry cites the page or
        paper each number comes from). With ``--split hash`` the sizes of
        the splits differ; these are the official files'.
      manual_download: for a dataset that cannot be downloaded here (ImageNet
        needs an account), what the user must do; ``files`` is then empty.
      image_shape: ``(height, width, channels)`` of every image, for a
        dataset of fixed image size (CIFAR-10: ``(32, 32, 3)``); its
        ExampleGen refuses an image file of another shape, read from the
        file's header, naming the file and both shapes. ``None`` where sizes
        vary (flowers, ImageNet: the preprocessing resizes), where the raw
        format itself fixes them (MNIST's idx header) and for tabular data.
    """

    name: str
    homepage: str
    num_classes: int
    split_sizes: Mapping[str, int] = dataclasses.field(hash=False)  # a dict: unhashable
    files: Sequence[RemoteFile]
    example_gen: str = ""
    manual_download: str = ""
    image_shape: Optional[Tuple[int, int, int]] = None

    def __post_init__(self):
        if not self.example_gen:  # the convention: components/<name>_example_gen.py
            object.__setattr__(self, "example_gen",
                               f"model_garden.components.{self.name}_example_gen.make_example_gen")

    def make_example_gen(self, input_base: str, split: SplitSpec, input_spans=None, **options):
        """Builds this dataset's ExampleGen component reading ``input_base``.

        ``input_spans``: the ExampleGen's ``input_spans`` property (see
        :class:`model_garden.components.file_example_gen.ExampleGen`);
        ``options``: the dataset's own ExampleGen options (the image
        datasets': ``train_shards``, ``test_shards``, ``skip_bad_images``,
        ``labels_offset``), passed only when given.
        """
        module, _, attr = self.example_gen.rpartition(".")
        factory: Callable = getattr(importlib.import_module(module), attr)
        return factory(input_base, split, input_spans=input_spans, **options)


#: sha256 of every canonical file: MNIST as published by tensorflow_datasets
#: (image_classification/mnist checksums), UCI Adult and CIFAR-10 of the
#: originals.
_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    "adult.names": "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a",
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    # tensorflow_datasets url_checksums/tf_flowers.txt (228,813,984 bytes).
    "flower_photos.tgz": "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
}


def _remote(urls: Sequence[str], *names: str, **kwargs) -> Tuple[RemoteFile, ...]:
    """The :class:`RemoteFile` of each file name (sha256 from :data:`_SHA256`), fetched from ``urls``."""
    return tuple(RemoteFile(name, _SHA256[name], tuple(urls), **kwargs) for name in names)


#: name -> :class:`Dataset`.
DATASETS: Registry[Dataset] = Registry("dataset")

# MNIST: http://yann.lecun.com/exdb/mnist/ ("a training set of 60,000 examples,
# and a test set of 10,000 examples"; digits 0..9).
DATASETS.register(Dataset(
    name="mnist", homepage="http://yann.lecun.com/exdb/mnist/",
    num_classes=10, split_sizes={"train": 60_000, "test": 10_000},
    files=_remote(("https://storage.googleapis.com/cvdf-datasets/mnist/",
                   "https://ossci-datasets.s3.amazonaws.com/mnist/"),
                  "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")))

# UCI Adult (Becker & Kohavi 1996, CC BY 4.0), the DATA_URL of
# official/r1/wide_deep/census_dataset.py; adult.names: "48842 instances ...
# (train=32561, test=16281)", class ">50K, <=50K.".
DATASETS.register(Dataset(
    name="census", homepage="https://archive.ics.uci.edu/dataset/2/adult",
    num_classes=2, split_sizes={"train": 32_561, "test": 16_281},
    files=_remote(("https://archive.ics.uci.edu/ml/machine-learning-databases/adult/",),
                  "adult.data", "adult.test", "adult.names")))

# CIFAR-10, python version: https://www.cs.toronto.edu/~kriz/cifar.html
# (Krizhevsky 2009: "60000 32x32 colour images in 10 classes ... 50000 training
# images and 10000 test images"; colour = RGB, the batches' 3 planes).
DATASETS.register(Dataset(
    name="cifar10", homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    num_classes=10, split_sizes={"train": 50_000, "test": 10_000}, image_shape=(32, 32, 3),
    files=_remote(("https://www.cs.toronto.edu/~kriz/",), "cifar-10-python.tar.gz",
                  extract="cifar-10-batches-py")))

# TF's flower photos, the dataset of TF-Slim's flowers (research/slim/
# datasets/flowers.py: "3670 images", SPLITS_TO_SIZES train 3,320 /
# validation 350, drawn at random: no official split, --split hash), 5 classes.
DATASETS.register(Dataset(
    name="flowers", homepage="https://www.tensorflow.org/datasets/catalog/tf_flowers",
    num_classes=5, split_sizes={"train": 3_320, "test": 350},
    files=_remote(("http://download.tensorflow.org/example_images/",), "flower_photos.tgz",
                  extract="flower_photos"),
    example_gen="model_garden.components.image_example_gen.make_flowers_example_gen"))

# ImageNet ILSVRC-2012 (research/slim/datasets/imagenet.py: 1,281,167 train /
# 50,000 validation images, 1,001 labels with the background class).
DATASETS.register(Dataset(
    name="imagenet", homepage="https://image-net.org/challenges/LSVRC/2012/",
    num_classes=1001, split_sizes={"train": 1_281_167, "test": 50_000}, files=(),
    example_gen="model_garden.components.image_example_gen.make_imagenet_example_gen",
    manual_download=IMAGENET_HOWTO + " (or put it at $MODEL_GARDEN_DATA/imagenet)"))


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name``.

    Raises:
      KeyError: naming the registered datasets.
    """
    return DATASETS.lookup(name)


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
        given but is not a folder (the message names it and what to do).
      DownloadError: no local copy, and the download failed; one line with
        each URL tried, what went wrong and the ``--data-dir`` way round it.
      FileNotFoundError: no local copy of a dataset that cannot be downloaded
        (its ``manual_download`` says what to do).
    """
    dataset = get_dataset(name)
    if data_dir:
        if not os.path.isdir(data_dir):
            what = "is a file, not a folder" if os.path.exists(data_dir) else "no such folder"
            raise FileNotFoundError(
                f"--data-dir {data_dir}: {what}; give the folder that holds {name}'s raw "
                f"files ({_files_hint(dataset)})")
        return os.path.abspath(data_dir)
    root = os.environ.get(DATA_ENV)
    if root:
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            fetch = ("" if dataset.manual_download
                     else f", or unset {DATA_ENV} to download them")
            raise FileNotFoundError(
                f"${DATA_ENV}={root} has no folder {name}/ for dataset {name}: put its raw "
                f"files in {folder}, pass --data-dir FOLDER{fetch}")
        return os.path.abspath(folder)
    if dataset.manual_download:
        raise FileNotFoundError(f"{name}: no local copy. {dataset.manual_download}")
    try:
        return os.path.abspath(download_all(dataset.files, cache_dir(name)))
    except DownloadError as e:
        raise DownloadError(
            f"{e}. Offline or blocked: fetch the files elsewhere ({_files_hint(dataset)}), "
            f"put them in one folder and pass --data-dir FOLDER (or set ${DATA_ENV} to the "
            f"folder above {name}/)") from e


def _files_hint(dataset: Dataset) -> str:
    """The canonical file names of ``dataset``, for messages."""
    names = [f.filename for f in dataset.files]
    return ", ".join(names) if names else dataset.homepage
