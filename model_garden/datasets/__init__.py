"""Raw datasets: the registry, downloads and the pure-Python readers.

Nothing here imports TensorFlow at import time (``model-garden list`` and the
recipe registry import this package and must stay instant); a reader imports
``tf.io.gfile`` lazily, only for a non-local path.

* :mod:`model_garden.datasets.registry`: :class:`Dataset` (files, sizes,
  ExampleGen factory), :data:`DATASETS`, :func:`get_dataset`,
  :func:`resolve_data_dir`; re-exported here.
* :mod:`model_garden.datasets.download`: sha256-checked, cached downloads.
* Readers of the raw formats: :mod:`~model_garden.datasets.idx` (MNIST),
  :mod:`~model_garden.datasets.census_csv` (UCI Adult),
  :mod:`~model_garden.datasets.cifar10` (CIFAR-10 batches) and
  :mod:`~model_garden.datasets.image_folder` (``<split>/<class>/<image>``).

The TFX ExampleGens that turn these into tf.Examples live in
:mod:`model_garden.components`.
"""

from model_garden.datasets.registry import (
    CACHE_ENV,
    DATA_ENV,
    DATASETS,
    Dataset,
    SplitSpec,
    cache_dir,
    get_dataset,
    resolve_data_dir,
)

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "DATASETS",
    "Dataset",
    "SplitSpec",
    "cache_dir",
    "get_dataset",
    "resolve_data_dir",
]
