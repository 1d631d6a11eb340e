"""The one way every ExampleGen of this package is built from a SplitSpec.

Each dataset's ExampleGen is TFX's ``FileBasedExampleGen`` with that
dataset's Beam executor (the custom-ExampleGen recipe of the TFX guide), node
id ``ExampleGen``, and output splits ``train`` and ``test``:

* ``official`` split: one input split per official file pattern; the input
  splits are the output splits;
* ``hash`` split: one input split matching every file, hash-split into
  ``train``:``test`` buckets (``SplitConfig``).
"""

from typing import Mapping, Optional

COMPONENT_ID = "ExampleGen"


def make_file_example_gen(
    input_base: str,
    split,
    executor_class,
    official_patterns: Mapping[str, str],
    all_pattern: str,
    custom_config=None,
):
    """A ``FileBasedExampleGen`` reading ``input_base`` with ``executor_class``.

    Args:
      input_base: the folder of the raw files (local or ``gs://``).
      split: a :class:`model_garden.components.datasets.SplitSpec`.
      executor_class: a ``BaseExampleGenExecutor`` subclass.
      official_patterns: ``{"train": glob, "test": glob}`` relative to
        ``input_base``, for the official split.
      all_pattern: glob of every raw file, for the hash split.
      custom_config: an optional ``example_gen_pb2.CustomConfig``.

    Returns:
      The component, node id ``ExampleGen``.

    Raises:
      ValueError: an unknown ``split.kind``.
    """
    from tfx.components import FileBasedExampleGen
    from tfx.dsl.components.base import executor_spec
    from tfx.proto import example_gen_pb2

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
        output_config = example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=split.train_buckets),
                    example_gen_pb2.SplitConfig.Split(name="test", hash_buckets=split.test_buckets),
                ]
            )
        )
    else:
        raise ValueError(f"unknown split kind {split.kind!r}: use 'official' or 'hash'")
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config,
        custom_config=custom_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor_class),
    ).with_id(COMPONENT_ID)
