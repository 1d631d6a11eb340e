"""The one way every ExampleGen of this package is built from a SplitSpec.

Each dataset's ExampleGen is :class:`ExampleGen`: TFX's ``FileBasedExampleGen``
spec plus the ``input_spans`` execution property
(:mod:`model_garden.components.input_spans`), run by that dataset's Beam
executor (the custom-ExampleGen recipe of the TFX guide) derived from
:class:`SpanExampleGenExecutor`, node id ``ExampleGen``, output splits
``train`` and ``test``.

It has no TFX driver: ``FileBasedExampleGen``'s ``FileBasedDriver`` resolves
one ``{SPAN}`` and, on Kubeflow, only runs as Vertex AI's
``lifecycle.preCacheCheck``, which the open-source backend ignores. The
``input_spans`` value (the spans read and their files' fingerprint) takes its
place in the cache key on every runner. The input splits:

* ``official`` split: one input split per official file pattern; the input
  splits are the output splits;
* ``hash`` split: one input split matching every file, hash-split into
  ``train``:``test`` buckets (``SplitConfig``).
"""

import itertools
from typing import Any, Dict, List, Mapping, Optional

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, component_spec, standard_artifacts
from tfx.types import standard_component_specs as specs

from model_garden.components.input_spans import INPUT_SPANS_KEY, SpanWindow, resolve_spans

COMPONENT_ID = "ExampleGen"
#: Optional execution property: a dataset's own ExampleGen options, as JSON
#: (the image ExampleGen's shards, ``skip_bad_images``, ``labels_offset``).
OPTIONS_KEY = "example_gen_options"


class ExampleGenSpec(component_spec.ComponentSpec):
    """``FileBasedExampleGenSpec`` plus ``input_spans`` (the JSON of a ``SpanWindow``)
    and the optional ``example_gen_options`` (JSON)."""

    PARAMETERS = {
        **specs.FileBasedExampleGenSpec.PARAMETERS,
        INPUT_SPANS_KEY: component_spec.ExecutionParameter(type=str),
        OPTIONS_KEY: component_spec.ExecutionParameter(type=str, optional=True),
    }
    INPUTS: Dict[str, Any] = {}
    OUTPUTS = dict(specs.FileBasedExampleGenSpec.OUTPUTS)


class ExampleGen(base_beam_component.BaseBeamComponent):
    """A file-based ExampleGen reading the spans of its ``input_spans`` property.

    Args:
      input_base: the raw data folder (local or ``gs://``).
      input_config, output_config, custom_config: as ``FileBasedExampleGen``'s.
      input_spans: ``SpanWindow.to_json()`` resolved when the pipeline is
        built, or the ``.future()[0].value`` placeholder of an
        :class:`model_garden.components.input_spans.InputSpans` step.
      executor_class: the dataset's :class:`SpanExampleGenExecutor` subclass.
      options: the ``example_gen_options`` property (JSON), or ``None``.
    """

    SPEC_CLASS = ExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BaseExampleGenExecutor)

    def __init__(self, input_base: str, input_config, output_config, custom_config,
                 input_spans, executor_class, options: Optional[str] = None):
        super().__init__(
            spec=ExampleGenSpec(
                input_base=input_base,
                input_config=input_config,
                output_config=output_config,
                custom_config=custom_config,
                range_config=None,
                output_data_format=example_gen_utils.example_gen_pb2.FORMAT_TF_EXAMPLE,
                output_file_format=example_gen_utils.example_gen_pb2.FORMAT_TFRECORDS_GZIP,
                input_spans=input_spans,
                example_gen_options=options,
                examples=types.Channel(type=standard_artifacts.Examples),
            ),
            custom_executor_spec=executor_spec.BeamExecutorSpec(executor_class),
        )


def input_window(exec_properties) -> SpanWindow:
    """The :class:`SpanWindow` of an ExampleGen execution.

    From its ``input_spans`` property; without one (an executor called
    directly) the whole ``input_base`` as it is now (:func:`resolve_spans`).

    Raises:
      InputSpansError: a malformed ``input_spans``, or no input files.
    """
    text = exec_properties.get(INPUT_SPANS_KEY)
    if text:
        return SpanWindow.from_json(text)
    return resolve_spans(exec_properties[specs.INPUT_BASE_KEY])


def split_files(input_base: str, split_pattern: str):
    """The files of one split: ``input_base/split_pattern`` matches, sorted, no dot-files.

    Raises:
      FileNotFoundError: nothing matches (names the pattern).
    """
    import os

    from tfx.dsl.io import fileio

    pattern = os.path.join(input_base, split_pattern)
    files = sorted(f for f in fileio.glob(pattern) if not os.path.basename(f).startswith("."))
    if not files:
        raise FileNotFoundError(f"no files match {pattern}")
    return files


class SpanExampleGenExecutor(BaseExampleGenExecutor):
    """Base of the datasets' executors: reads every span folder of ``input_spans``.

    Subclasses implement :meth:`ReadSplit` (what TFX calls
    ``GetInputSourceToExamplePTransform``): a PTransform reading one folder
    (``exec_properties["input_base"]``) for one split pattern. This class
    applies it to each span's folder with that folder as ``input_base`` and
    flattens the results, then stamps the Examples artifact with the latest
    span and the input fingerprint (what ``FileBasedDriver`` does for TFX's
    own ExampleGens: ``span`` property, ``input_fingerprint`` custom property).
    """

    def ReadSplit(self) -> beam.PTransform:
        raise NotImplementedError

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        read = self.ReadSplit()

        @beam.ptransform_fn
        @beam.typehints.with_input_types(beam.Pipeline)
        def _ReadSpans(pipeline, exec_properties, split_pattern):  # pylint: disable=invalid-name
            window = input_window(exec_properties)
            if not window.spans:
                return pipeline | "Read" >> read(exec_properties, split_pattern)
            parts = [
                pipeline | f"ReadSpan{span}" >> read({**exec_properties, specs.INPUT_BASE_KEY: folder},
                                                     split_pattern)
                for span, folder in zip(window.spans, window.folders())
            ]
            return parts | "Spans" >> beam.Flatten()

        return _ReadSpans

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        window = input_window(exec_properties)
        exec_properties = {**exec_properties, INPUT_SPANS_KEY: window.to_json()}
        super().Do(input_dict, output_dict, exec_properties)
        stamp_window(artifact_utils.get_single_instance(output_dict[specs.EXAMPLES_KEY]), window)


def stamp_window(examples, window: SpanWindow) -> None:
    """Stamps an Examples artifact with the latest span and the input fingerprint of ``window``."""
    examples.span = window.latest_span
    examples.version = 0
    examples.set_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME,
                                        window.fingerprint)
    examples.set_string_custom_property("spans", ",".join(map(str, window.spans)))


def hash_split_config(split):
    """The ``SplitConfig`` of a ``hash`` split: ``train`` then ``test`` hash buckets."""
    from tfx.proto import example_gen_pb2

    return example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=split.train_buckets),
            example_gen_pb2.SplitConfig.Split(name="test", hash_buckets=split.test_buckets),
        ]
    )


def hash_split_of(examples, split) -> List[int]:
    """The output split each example lands in under a ``hash`` split: 0 ``train``, 1 ``test``.

    Exactly what the ExampleGen executor does (TFX's
    ``BaseExampleGenExecutor``): buckets are the running sums of the
    splits' ``hash_buckets`` and each example goes through TFX's own
    partition function (a SHA-256 of its deterministic serialization), so
    code outside the pipeline (the benchmarks' plain Keras script) gets the
    very split a ``--split hash:...`` run trains and evaluates on.

    Args:
      examples: the ``tf.train.Example``s the dataset's ExampleGen writes
        (same features, same bytes: the hash is of the serialization).
      split: a ``hash`` :class:`model_garden.datasets.SplitSpec`.

    Raises:
      ValueError: ``split`` is not a hash split.
    """
    from tfx.components.example_gen.base_example_gen_executor import _PartitionFn

    if split.kind != "hash":
        raise ValueError(f"hash_split_of needs a hash split, not {split.kind!r}")
    config = hash_split_config(split)
    buckets = list(itertools.accumulate(s.hash_buckets for s in config.splits))
    return [_PartitionFn(example, len(buckets), buckets, config) for example in examples]


def make_file_example_gen(
    input_base: str,
    split,
    executor_class,
    official_patterns: Mapping[str, str],
    all_pattern: str,
    custom_config=None,
    input_spans: Optional[str] = None,
    options: Optional[str] = None,
):
    """An :class:`ExampleGen` reading ``input_base`` with ``executor_class``.

    Args:
      input_base: the folder of the raw files (local or ``gs://``).
      split: a :class:`model_garden.datasets.SplitSpec`.
      executor_class: a ``BaseExampleGenExecutor`` subclass.
      official_patterns: ``{"train": glob, "test": glob}`` relative to
        ``input_base``, for the official split.
      all_pattern: glob of every raw file, for the hash split.
      custom_config: an optional ``example_gen_pb2.CustomConfig``.
      input_spans: the ``input_spans`` property (:class:`ExampleGen`); ``None``:
        resolved now, without the span layout (the factory sets it for
        ``--spans`` and for Kubeflow).
      options: the ``example_gen_options`` property (JSON), or ``None``.

    Returns:
      The component, node id ``ExampleGen``.

    Raises:
      ValueError: an unknown ``split.kind``.
    """
    from tfx.proto import example_gen_pb2

    from model_garden.components.input_spans import resolve_spans

    output_config: Optional[example_gen_pb2.Output] = None
    if split.kind == "official":
        input_config = example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=name, pattern=pattern)
                for name, pattern in official_patterns.items()
            ]
        )
    elif split.kind == "hash":
        input_config = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="all", pattern=all_pattern)]
        )
        output_config = example_gen_pb2.Output(split_config=hash_split_config(split))
    else:
        raise ValueError(f"unknown split kind {split.kind!r}: use 'official' or 'hash'")
    if output_config is None:
        output_config = example_gen_utils.make_default_output_config(input_config)
    if input_spans is None:
        input_spans = resolve_spans(input_base).to_json()
    return ExampleGen(input_base, input_config, output_config, custom_config, input_spans,
                      executor_class, options).with_id(COMPONENT_ID)
