"""The shared Trainer input pipeline (``input_fn``) over transformed examples."""

from typing import List, Optional


def shard_by_data(dataset):
    """``dataset`` with ``AutoShardPolicy.DATA`` for multi-worker strategies.

    The default (``AUTO``: by file) fails when an ExampleGen split has fewer
    files than the cluster has workers ("Could not apply FILE based sharding:
    the dataset only has 1 file(s) ... required 2 shards/workers"); ``DATA``
    has every worker read the files and keep its share of the batches, which
    works for any number of files. No effect without a multi-worker strategy.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _read(file_pattern, data_accessor, schema, **options):
    """The Trainer's ``DataAccessor`` (tfxio) over ``file_pattern`` with ``schema``;
    ``options``: ``tfxio.TensorFlowDatasetOptions`` fields."""
    from tfx_bsl.public import tfxio

    return data_accessor.tf_dataset_factory(
        file_pattern, tfxio.TensorFlowDatasetOptions(**options), schema)


def input_fn(file_pattern: List[str], data_accessor, tf_transform_output, batch_size: int,
             label_key: str, shuffle: bool = True, num_epochs=None):
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
    return shard_by_data(_read(file_pattern, data_accessor,
                               tf_transform_output.transformed_metadata.schema,
                               batch_size=batch_size, label_key=label_key, shuffle=shuffle,
                               num_epochs=num_epochs))


def raw_input_fn(
    file_pattern: List[str],
    data_accessor,
    tf_transform_output,
    batch_size: int,
    label_key: str,
    shuffle: bool = True,
    num_epochs: Optional[int] = None,
    drop_final_batch: Optional[bool] = None,
):
    """``(features, label)`` batches from RAW examples through the transform graph.

    For recipes with ``Transform(materialize=False)`` (images: no decoded
    copy of the dataset is written). Reads the ExampleGen's raw
    ``tf.Example`` files through the Trainer's ``DataAccessor`` with the raw
    schema (``tf_transform_output.raw_metadata``), and applies the transform
    graph (``tf_transform_output.transform_features_layer()``) to each batch
    in ``tf.data``, in parallel (``AUTOTUNE``) and in order. Serving applies
    the same graph (:mod:`model_garden.trainers.export`), so training and
    serving preprocess identically.

    Args:
      file_pattern: ``FnArgs.train_files`` or ``FnArgs.eval_files`` (the
        ExampleGen's split files).
      data_accessor: ``FnArgs.data_accessor``.
      tf_transform_output: a ``tft.TFTransformOutput`` of the transform graph.
      batch_size: raw examples per batch (the global batch under a strategy).
      label_key: the transformed feature to split off as the label.
      shuffle: shuffle examples (training) or keep file order (evaluation).
      num_epochs: ``None`` repeats forever (the Trainer counts steps); ``1``
        reads the files once.
      drop_final_batch: drop a final batch smaller than ``batch_size``;
        ``None`` means drop it only when repeating forever (so every batch
        then has exactly ``batch_size`` examples).

    Returns:
      A dataset (not prefetched: the caller adds its own maps, then
      prefetches) yielding ``(dict of transformed feature tensors without
      the label, label tensor)``, each with leading dimension ``batch_size``
      (smaller only for a final batch kept by ``drop_final_batch=False``).
      Shapes and dtypes are those of the ``preprocessing_fn``'s outputs, e.g.
      for CIFAR-10 ``{"image": int64 [batch, 32, 32, 3]}`` and an int64
      ``[batch]`` label.
    """
    import tensorflow as tf

    if drop_final_batch is None:
        drop_final_batch = num_epochs is None
    raw = _read(file_pattern, data_accessor, tf_transform_output.raw_metadata.schema,
                batch_size=batch_size, shuffle=shuffle, num_epochs=num_epochs,
                drop_final_batch=drop_final_batch)
    transform = tf_transform_output.transform_features_layer()

    def apply_transform(features):
        transformed = dict(transform(features))
        label = transformed.pop(label_key)
        return transformed, label

    return shard_by_data(raw.map(apply_transform, num_parallel_calls=tf.data.AUTOTUNE))
