"""The image-classification ``run_fn``: any network of :mod:`model_garden.nets`.

One Trainer for every image recipe (the CIFAR ResNets now, the TF-Slim zoo
next): the network, its preprocessing and image size come from the registry
by :attr:`~model_garden.trainers.configs.ImageClassifierConfig.net`; the
hyperparameters from :class:`~model_garden.trainers.configs.ImageClassifierConfig`.

* input: RAW ExampleGen examples (TF-Slim keys) through the transform graph
  (``Transform(materialize=False)``, :func:`model_garden.trainers.inputs.raw_input_fn`),
  then the network's train or eval preprocessing (:mod:`model_garden.preprocessing`);
* strategy (:mod:`model_garden.trainers.strategies`) and mixed precision;
* SGD with momentum and official/resnet's piecewise-constant schedule;
* exactly ``train_steps`` steps (:func:`model_garden.trainers.steps.fit`),
  checkpointed every Keras epoch under ``<model_run_dir>/checkpoints`` and
  resumed from there by every replica after a kill or a restart;
* export with ``serving_default`` (serialized raw tf.Examples) and
  ``classify_images`` (encoded PNG/JPEG bytes), both applying the transform
  graph and the eval preprocessing.
"""

import logging
import os
import shutil
import tempfile
from typing import List, Optional, Sequence

import tensorflow as tf

from model_garden import nets, preprocessing
# The image preprocessing_fn's features: raw ``image/encoded`` in, decoded
# ``image`` pixels and ``image/class/label`` out (TF-Slim's TFRecord keys).
from model_garden.schemas.cifar10 import IMAGE_KEY, LABEL_KEY, RAW_IMAGE_KEY
from model_garden.trainers import configs, export, inputs, steps, strategies, warm_start
from model_garden.trainers.checkpoints import EpochCheckpoint, is_chief


def learning_rate_schedule(
    batch_size: int,
    train_examples: int,
    base_learning_rate: float = configs.ImageClassifierConfig.base_learning_rate,
    boundary_epochs: Sequence[int] = configs.ImageClassifierConfig.boundary_epochs,
    decay_rates: Sequence[float] = configs.ImageClassifierConfig.decay_rates,
):
    """official/resnet ``learning_rate_with_decay`` (``resnet_run_loop.py``, batch_denom 128).

    The rate is ``base_learning_rate * batch_size / 128 * decay_rates[i]``
    after ``int(train_examples / batch_size * boundary_epochs[i-1])`` steps.

    Returns:
      A ``tf.keras.optimizers.schedules.PiecewiseConstantDecay``.
    """
    initial = base_learning_rate * batch_size / 128
    batches_per_epoch = train_examples / batch_size
    boundaries = [int(batches_per_epoch * e) for e in boundary_epochs]
    values = [initial * d for d in decay_rates]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def compile_model(model, schedule, momentum: float = configs.ImageClassifierConfig.momentum) -> None:
    """SGD with momentum; cross-entropy; top-1 (``accuracy``) and ``top_5_accuracy``."""
    model.compile(
        optimizer=tf.keras.optimizers.SGD(learning_rate=schedule, momentum=momentum),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            tf.keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top_5_accuracy"),
        ],
    )


def precision_policy(name: str, strategy) -> str:
    """The Keras dtype policy for ``mixed_precision`` = ``name``.

    ``auto``: ``mixed_bfloat16`` under ``TPUStrategy``, ``mixed_float16``
    when a GPU is visible, else ``float32``. Otherwise one of
    :data:`model_garden.trainers.configs.MIXED_PRECISION`.

    Raises:
      ValueError: another name.
    """
    if name == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            return "mixed_bfloat16"
        return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"
    if name not in configs.MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {configs.MIXED_PRECISION}, got {name!r}")
    return name


def make_dataset(
    file_pattern: List[str],
    data_accessor,
    tf_transform_output,
    batch_size: int,
    training: bool,
    net: str,
    num_epochs: Optional[int] = None,
) -> tf.data.Dataset:
    """``(images, labels)`` batches from RAW examples: transform graph, then preprocessing.

    Args:
      file_pattern: ``fn_args.train_files`` / ``eval_files`` (ExampleGen output).
      data_accessor: ``fn_args.data_accessor``.
      tf_transform_output: ``tft.TFTransformOutput`` of the Transform run.
      batch_size: global batch size.
      training: shuffle and apply the training preprocessing (random
        augmentation); otherwise file order and the eval preprocessing.
      net: the network (its preprocessing and image size).
      num_epochs: ``None`` repeats forever (every batch full); ``1`` reads
        the files once (the last batch may be smaller; not in training).

    Returns:
      A prefetched dataset of float32 ``[batch, size, size, 3]`` images and
      int64 ``[batch]`` labels.
    """
    spec = nets.get_net(net)
    preprocess = preprocessing.get_preprocessing(spec.preprocessing)
    size = spec.default_image_size
    ds = inputs.raw_input_fn(
        file_pattern, data_accessor, tf_transform_output, batch_size,
        label_key=LABEL_KEY, shuffle=training, num_epochs=num_epochs,
    ).map(lambda features, labels: (features[IMAGE_KEY], labels))
    if training:
        ds = (
            ds.unbatch()
            .map(lambda image, label: (preprocess(image, size, size, is_training=True), label),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True)
        )
    else:
        ds = ds.map(lambda images, labels: (_eval_batch(images, preprocess, size), labels),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return inputs.shard_by_data(ds.prefetch(tf.data.AUTOTUNE))


def _eval_batch(images, preprocess, size: int):
    """Eval preprocessing of a batch ``[N, H, W, 3]`` -> float32 ``[N, size, size, 3]``."""
    return tf.map_fn(lambda image: preprocess(image, size, size, is_training=False), images,
                     fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


def _classification_outputs(probabilities):
    return {
        "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        "probabilities": probabilities,
    }


def make_signatures(model, tf_transform_output, net: str):
    """``serving_default`` and ``classify_images`` of the exported SavedModel.

    ``serving_default``: serialized raw tf.Examples ``examples`` string ``[N]``.
    ``classify_images``: encoded PNG/JPEG ``images`` string ``[N]`` (decoded by
    the Transform graph, so serving decodes exactly as training did). Both
    apply the eval preprocessing and return ``classes`` int64 ``[N]`` and
    ``probabilities`` float32 ``[N, num_classes]``.
    """
    spec = nets.get_net(net)
    preprocess = preprocessing.get_preprocessing(spec.preprocessing)
    size = spec.default_image_size

    def outputs(images):
        return _classification_outputs(model(_eval_batch(images, preprocess, size)))

    serving_default = export.make_serve_tf_examples_fn(
        model, tf_transform_output, LABEL_KEY, lambda x: x,
        call=lambda transformed: outputs(transformed[IMAGE_KEY]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def classify_images(images):
        transformed = model.tft_layer({RAW_IMAGE_KEY: tf.reshape(images, [-1, 1])})
        return outputs(transformed[IMAGE_KEY])

    return {"serving_default": serving_default, "classify_images": classify_images}


def train(fn_args, callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.Model:
    """Trains (resuming from ``<model_run_dir>/checkpoints``) and exports.

    Args:
      fn_args: the Trainer's ``FnArgs``: ``train_steps`` (exactly that many
        steps), ``eval_steps`` (batches per validation; ``None``: the eval
        split once), ``custom_config`` (an
        :class:`~model_garden.trainers.configs.ImageClassifierConfig`).
      callbacks: extra Keras callbacks (run after the checkpoint callback).

    Returns:
      The trained model (also saved to ``fn_args.serving_model_dir`` by the chief).

    Raises:
      model_garden.trainers.configs.ConfigError: a bad ``custom_config``.
      model_garden.trainers.warm_start.WarmStartError: a base model of another
        architecture.
    """
    import tensorflow_transform as tft

    config = configs.from_custom_config(configs.ImageClassifierConfig, fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = strategies.get_strategy(config.strategy)
    policy = precision_policy(config.mixed_precision, strategy)
    chief = is_chief(strategy)
    # Every replica reads the run's checkpoints; only the chief writes there
    # (the TF multi-worker guide: other workers write to a temporary folder).
    scratch = None if chief else tempfile.mkdtemp(prefix="image_classifier_worker")

    train_ds = make_dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                            config.batch_size, training=True, net=config.net)
    eval_ds = make_dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                           config.batch_size, training=False, net=config.net,
                           num_epochs=None if fn_args.eval_steps else 1)
    previous_policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = nets.build(config.net, config.num_classes, weight_decay=config.weight_decay)
            schedule = learning_rate_schedule(
                config.batch_size, config.train_examples, config.base_learning_rate,
                config.boundary_epochs, config.decay_rates,
            )
            compile_model(model, schedule, config.momentum)
            # Create the momentum slots now, so a restore fills them at once
            # (slots created later by the first step would start from zero).
            model.optimizer.build(model.trainable_variables)
        checkpoint = EpochCheckpoint(os.path.join(fn_args.model_run_dir, "checkpoints"), model,
                                     None if chief else os.path.join(scratch, "checkpoints"))
        initial_epoch = checkpoint.restore()
        if initial_epoch == 0:  # a resumed run continues from its own checkpoint
            warm_start.warm_start(model, fn_args.base_model)
        logging.info("%s (%s, %s, batch %d) from epoch %d", model.name, policy,
                     type(strategy).__name__, config.batch_size, initial_epoch)
        steps.fit(model, train_ds, eval_ds, fn_args, config, callbacks=[checkpoint, *callbacks],
                  initial_epoch=initial_epoch, validation_freq=config.epochs_between_evals)
        results = model.evaluate(eval_ds, steps=fn_args.eval_steps, return_dict=True, verbose=0)
        logging.info("final evaluation: %s", results)
        signatures = make_signatures(model, tf_transform_output, config.net)
        export.save(model, fn_args.serving_model_dir if chief else os.path.join(scratch, "model"),
                    signatures)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return model


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: :func:`train`.

    ``custom_config``: the fields of
    :class:`~model_garden.trainers.configs.ImageClassifierConfig`. Writes
    checkpoints to ``<model_run_dir>/checkpoints`` (resumed when the
    orchestrator retries the execution or a TFJob restarts its replicas),
    TensorBoard logs to ``model_run_dir`` and the SavedModel with signatures
    ``serving_default`` and ``classify_images`` (:func:`make_signatures`) to
    ``serving_model_dir``.
    """
    train(fn_args)
