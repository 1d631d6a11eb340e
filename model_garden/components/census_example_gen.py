"""ExampleGen for the UCI Adult files: a Beam executor of FileBasedExampleGen.

Each input file is read line by line in Beam (one ``FlatMap`` over the
matched files, so every error names its file and line) and parsed with
:mod:`model_garden.datasets.census_csv`. Every row becomes one
``tf.train.Example`` with the 15 columns as one-value features:

=====================================================  =====  ================
keys                                                   type   value
=====================================================  =====  ================
age, fnlwgt, education_num, capital_gain,              int64  ``[1]``
capital_loss, hours_per_week
workclass, education, marital_status, occupation,      bytes  ``[1]``, UTF-8;
relationship, race, gender, native_country                    ``"?"`` = unknown
income_bracket (label)                                 bytes  ``<=50K``/``>50K``
=====================================================  =====  ================

Splits (``SplitSpec``):

* ``official``: input splits ``train`` = ``adult.data`` (32,561 rows) and
  ``test`` = ``adult.test`` (16,281 rows), the official model's train/eval.
* ``hash``: both files (pattern ``adult.[dt]*``, which leaves out
  ``adult.names``) as one input split, divided by TFX's ``SplitConfig`` into
  ``train``:``test`` hash buckets.

Bad rows: by default a malformed row fails the component with
:class:`~model_garden.datasets.census_csv.CensusFormatError` (file and line).
``custom_config`` ``{"on_bad_rows": "drop"}`` (see :func:`make_custom_config`)
drops them instead; each one is logged, their number per file is logged and
counted in the Beam counter ``census_example_gen:bad_rows_dropped``.
"""

import logging
from typing import Any, Dict, Iterator

import apache_beam as beam

from model_garden.components.file_example_gen import (
    SpanExampleGenExecutor, make_file_example_gen, split_files)
from model_garden.datasets import census_csv

#: ``custom_config`` key: ``"raise"`` (default) or ``"drop"``.
ON_BAD_ROWS_KEY = "on_bad_rows"
OFFICIAL_PATTERNS = {"train": "adult.data", "test": "adult.test"}
HASH_PATTERN = "adult.[dt]*"
_COUNTER_NAMESPACE = "census_example_gen"


def row_to_example(row: census_csv.Row):
    """One parsed row -> ``tf.train.Example`` (int64 numerics, bytes others)."""
    import tensorflow as tf

    feature = {}
    for name in census_csv.COLUMNS:
        value = row[name]
        if name in census_csv.NUMERIC_COLUMNS:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[str(value).encode("utf-8")])
            )
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _examples_of_file(path: str, on_bad_rows: str) -> Iterator[Any]:
    """Yields the tf.Examples of one Adult file (a ``FlatMap`` body)."""
    dropped = []
    rows = beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "rows")
    with beam.io.filesystems.FileSystems.open(
        path, compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED
    ) as f:
        lines = census_csv.decode_lines(f)  # a bad line is a CensusFormatError
        for _, row in census_csv.iter_rows(lines, path, on_bad_rows, dropped):
            rows.inc()
            yield row_to_example(row)
    if dropped:
        beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "bad_rows_dropped").inc(
            len(dropped)
        )
        logging.warning(
            "%s: dropped %d bad rows (lines %s)",
            path, len(dropped), ", ".join(str(n) for n, _ in dropped[:20]),
        )


def on_bad_rows_of(exec_properties: Dict[str, Any]) -> str:
    """The ``on_bad_rows`` setting in ``exec_properties['custom_config']``.

    ``custom_config`` is an ``example_gen_pb2.CustomConfig`` (or its JSON, as
    executors receive it) holding a packed ``google.protobuf.Struct``.
    """
    from google.protobuf import struct_pb2
    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    config = exec_properties.get("custom_config")
    if not config:
        return "raise"
    if isinstance(config, str):
        config = proto_utils.json_to_proto(config, example_gen_pb2.CustomConfig())
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        raise ValueError(
            "custom_config must hold a google.protobuf.Struct, not "
            + config.custom_config.type_url
        )
    value = "raise"
    if ON_BAD_ROWS_KEY in struct.fields:
        value = struct.fields[ON_BAD_ROWS_KEY].string_value
    if value not in census_csv.ON_BAD_ROWS:
        raise ValueError(
            f"custom_config {ON_BAD_ROWS_KEY}={value!r}: "
            f"use one of {census_csv.ON_BAD_ROWS}"
        )
    return value


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def _CensusToExample(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """Reads the Adult files matching ``split_pattern`` into tf.Examples."""
    files = split_files(exec_properties["input_base"], split_pattern)
    on_bad_rows = on_bad_rows_of(exec_properties)
    logging.info("census ExampleGen: %s (on_bad_rows=%s)", files, on_bad_rows)
    return pipeline | "Files" >> beam.Create(files) | "ParseAdult" >> beam.FlatMap(
        _examples_of_file, on_bad_rows)


class Executor(SpanExampleGenExecutor):
    """FileBasedExampleGen executor for ``adult.data`` / ``adult.test``."""

    def ReadSplit(self) -> beam.PTransform:
        return _CensusToExample


def make_custom_config(on_bad_rows: str = "raise"):
    """``example_gen_pb2.CustomConfig`` holding ``{"on_bad_rows": ...}``."""
    from google.protobuf import struct_pb2
    from tfx.proto import example_gen_pb2

    if on_bad_rows not in census_csv.ON_BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {census_csv.ON_BAD_ROWS}")
    struct = struct_pb2.Struct()
    struct.update({ON_BAD_ROWS_KEY: on_bad_rows})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def make_example_gen(input_base: str, split, on_bad_rows: str = "raise", input_spans=None):
    """The census ExampleGen component (id ``ExampleGen``).

    Args:
      input_base: folder holding ``adult.data`` and ``adult.test``.
      split: a :class:`model_garden.datasets.SplitSpec`.
      on_bad_rows: ``"raise"`` or ``"drop"`` (see the module docstring).

    Returns:
      A ``FileBasedExampleGen`` with this module's :data:`Executor`, output
      splits ``train`` and ``test``.
    """
    return make_file_example_gen(
        input_base, split, Executor, OFFICIAL_PATTERNS, HASH_PATTERN,
        custom_config=make_custom_config(on_bad_rows), input_spans=input_spans,
    )
