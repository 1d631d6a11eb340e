"""MNIST ExampleGen: a FileBasedExampleGen with a Beam executor for idx files.

Reads LeCun's idx files (http://yann.lecun.com/exdb/mnist/) from
``input_base``, pairing each ``<prefix>-images-idx3-ubyte[.gz]`` with its
``<prefix>-labels-idx1-ubyte[.gz]``, and writes one TF-Slim-format
``tf.train.Example`` per image (PNG; see
:mod:`model_garden.components.image_example`).

Splits (:class:`~model_garden.datasets.SplitSpec`):

* ``official``: input splits ``train`` (``train-*``) and ``test``
  (``t10k-*``); each must hold a complete images + labels pair.
* ``hash``: one input pattern ``*-idx?-ubyte*``; every complete pair present
  is read (a file without its partner is skipped with a warning) and the
  examples are hash-split into ``train``:``test`` buckets.

Files are globbed and paired when the pipeline is built; they are read and
encoded in the Beam workers. Paths go through ``tfx.dsl.io.fileio``, so
``gs://`` works.
"""

import collections
import os
import re
from typing import Any, Dict, Iterator, List, Tuple

from absl import logging
import apache_beam as beam
import tensorflow as tf
from tfx.dsl.io import fileio
# tfx.v1.proto.Output is this very class; importing it
# from example_gen_pb2 spares Beam workers tfx.v1's ~10 s of google.cloud imports.
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from model_garden.datasets import SplitSpec
from model_garden.components.file_example_gen import (SpanExampleGenExecutor, hash_split_of,
                                                      make_file_example_gen)
from model_garden.datasets.idx import read_idx_pair
from model_garden.components.image_example import png_example

OFFICIAL_PATTERNS = {"train": "train-*", "test": "t10k-*"}
HASH_PATTERN = "*-idx?-ubyte*"

_NAME = re.compile(r"^(?P<prefix>.+)-(?P<kind>images-idx3|labels-idx1)-ubyte(?P<gz>\.gz)?$")
_PARTNER = {"images-idx3": "labels-idx1", "labels-idx1": "images-idx3"}
_NO_PARTNER = {"images-idx3": "has no labels", "labels-idx1": "has no images"}


def _open(path: str):
    return fileio.open(path, "rb")


def find_pairs(input_base: str, split_pattern: str, strict: bool) -> List[Tuple[str, str]]:
    """The sorted ``(images, labels)`` idx file pairs matching the pattern.

    Args:
      input_base: the data folder (local or ``gs://``).
      split_pattern: glob relative to ``input_base``.
      strict: a file without its partner is an error (official split); else
        it is skipped with a warning (hash split).

    Raises:
      FileNotFoundError: no complete pair, or (``strict``) a missing partner;
        the message names the missing file.
    """
    pattern = os.path.join(input_base, split_pattern)
    found: Dict[Tuple[str, str], Dict[str, str]] = collections.defaultdict(dict)
    for path in sorted(fileio.glob(pattern)):
        m = _NAME.match(os.path.basename(path))
        if not m:
            continue
        key = (os.path.dirname(path), m.group("prefix"))
        other = found[key].get(m.group("kind"))
        if other:  # both x and x.gz: keep the .gz (the canonical, checksummed file)
            path, dropped = (path, other) if m.group("gz") else (other, path)
            logging.warning("%s: ignored, using %s", dropped, path)
        found[key][m.group("kind")] = path
    pairs = []
    for (folder, prefix), files in sorted(found.items()):
        if len(files) == 2:
            pairs.append((files["images-idx3"], files["labels-idx1"]))
            continue
        (kind, present), = files.items()
        problem = (
            f"{folder}: {prefix}-{_PARTNER[kind]}-ubyte(.gz) is missing; the "
            f"{kind.split('-')[0]} file {os.path.basename(present)} {_NO_PARTNER[kind]}"
        )
        if strict:
            raise FileNotFoundError(f"{problem}; pass --split hash to split the files present")
        logging.warning("%s; skipping it", problem)
    if not pairs:
        raise FileNotFoundError(
            f"{pattern}: no complete pair of <prefix>-images-idx3-ubyte[.gz] and "
            "<prefix>-labels-idx1-ubyte[.gz] files"
        )
    return pairs


def _pair_to_examples(pair: Tuple[str, str]) -> Iterator[tf.train.Example]:
    images, labels = read_idx_pair(*pair, open_fn=_open)  # errors name the file
    logging.info("%s: %d images", pair[0], len(images))
    for pixels, label in zip(images, labels):
        yield png_example(pixels, int(label))


def hash_split_masks(images, labels, split: SplitSpec):
    """Which of ``images`` the ExampleGen puts in ``train`` and which in ``test``.

    The examples are built as the executor builds them (:func:`png_example`)
    and assigned by :func:`hash_split_of`, so the result is the split of a
    ``--split hash:...`` run over the same idx files.

    Args:
      images: uint8 ``[N, 28, 28]`` (:func:`read_idx_pair`).
      labels: uint8 ``[N]``.
      split: a ``hash`` split.

    Returns:
      ``(train, test)``: boolean ``[N]`` masks, complementary.
    """
    import numpy as np

    parts = np.array(hash_split_of((png_example(p, int(l)) for p, l in zip(images, labels)),
                                   split))
    return parts == 0, parts == 1


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _IdxToExample(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """Reads the idx pairs matching ``split_pattern`` into TF-Slim examples."""
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
    )
    pairs = find_pairs(
        exec_properties[standard_component_specs.INPUT_BASE_KEY],
        split_pattern,
        strict=not output_config.split_config.splits,
    )
    return (
        pipeline
        | "IdxPairs" >> beam.Create(pairs)
        | "ReadIdx" >> beam.FlatMap(_pair_to_examples)
    )


class Executor(SpanExampleGenExecutor):
    """ExampleGen executor turning MNIST idx files into tf.train.Examples."""

    def ReadSplit(self) -> beam.PTransform:
        return _IdxToExample


def make_example_gen(input_base: str, split: SplitSpec, input_spans=None):
    """The MNIST ExampleGen (node id ``ExampleGen``) reading ``input_base``.

    Args:
      input_base: folder of the idx files (local or ``gs://``).
      split: ``official`` (``train-*`` / ``t10k-*`` files) or ``hash``
        (all files present, ``train_buckets``:``test_buckets``).

    Returns:
      A ``FileBasedExampleGen`` producing splits ``train`` and ``test``.

    Raises:
      ValueError: an unknown ``split.kind``.
    """
    return make_file_example_gen(input_base, split, Executor, OFFICIAL_PATTERNS, HASH_PATTERN,
                                 input_spans=input_spans)
