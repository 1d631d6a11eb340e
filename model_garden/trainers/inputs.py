"""The shared Trainer input pipeline (``input_fn``) over transformed examples."""

from typing import List


def input_fn(
    file_pattern: List[str],
    data_accessor,
    tf_transform_output,
    batch_size: int,
    label_key: str,
    shuffle: bool = True,
    num_epochs=None,
):
    """A ``tf.data.Dataset`` of ``(features, label)`` batches.

    Reads the Transform component's materialized examples through the
    Trainer's ``DataAccessor`` (``tfxio``), as the TFX penguin template does.

    Args:
      file_pattern: ``FnArgs.train_files`` or ``FnArgs.eval_files``.
      data_accessor: ``FnArgs.data_accessor``.
      tf_transform_output: a ``tft.TFTransformOutput`` of the transform graph.
      batch_size: examples per batch (the global batch under a strategy).
      label_key: the transformed feature to split off as the label.
      shuffle: shuffle examples (training) or keep file order (evaluation).
      num_epochs: ``None`` repeats forever (the Trainer counts steps).

    Returns:
      A dataset yielding ``(dict of feature tensors, label tensor)``, each
      with leading dimension ``batch_size`` (the last batch may be smaller
      only when ``num_epochs`` is set).
    """
    from tfx_bsl.public import tfxio

    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=label_key,
            shuffle=shuffle,
            num_epochs=num_epochs,
        ),
        tf_transform_output.transformed_metadata.schema,
    )
