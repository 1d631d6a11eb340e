"""The image-classification ``run_fn``: any network of :mod:`model_garden.nets`.

One Trainer for every image recipe (the CIFAR ResNets, the TF-Slim zoo on
flowers and ImageNet, the official ImageNet ResNet-50): the network, its preprocessing and image size come from the registry
by :attr:`~model_garden.trainers.configs.ImageClassifierConfig.net`; the
hyperparameters from :class:`~model_garden.trainers.configs.ImageClassifierConfig`.

* input: RAW ExampleGen examples (TF-Slim keys) through the transform graph
  (``Transform(materialize=False)``, :func:`model_garden.trainers.inputs.raw_input_fn`),
  then the network's train or eval preprocessing (:mod:`model_garden.preprocessing`);
* strategy (:mod:`model_garden.trainers.strategies`) and mixed precision;
* SGD with momentum or RMSProp; official/resnet's piecewise-constant or
  Slim's exponential schedule (:func:`make_schedule`); auxiliary logits
  weighted as Slim does (:func:`compile_model`);
* initial weights from ``checkpoint_path`` (a Slim ``.ckpt``, a pushed
  SavedModel, Keras ``.h5``) minus ``checkpoint_exclude_scopes``, only
  ``trainable_scopes`` training (:mod:`model_garden.trainers.initialize`),
  or the latest blessed model (``--warm-start``), for a fresh run only;
* exactly ``train_steps`` steps (:func:`model_garden.trainers.steps.fit`),
  checkpointed every Keras epoch under ``<model_run_dir>/checkpoints`` and
  resumed from there by every replica after a kill or a restart;
* export with ``serving_default`` (serialized raw tf.Examples) and
  ``classify_images`` (encoded PNG/JPEG bytes), both applying the transform
  graph and the eval preprocessing, with the top-5 class ids, names and
  probabilities.
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
from model_garden.trainers import configs, export, initialize, inputs, steps, strategies, warm_start
from model_garden.trainers.checkpoints import EpochCheckpoint, is_chief


def learning_rate_schedule(
    batch_size: int,
    train_examples: int,
    base_learning_rate: float = configs.ImageClassifierConfig.base_learning_rate,
    boundary_epochs: Sequence[int] = configs.ImageClassifierConfig.boundary_epochs,
    decay_rates: Sequence[float] = configs.ImageClassifierConfig.decay_rates,
    batch_denominator: int = configs.ImageClassifierConfig.lr_batch_denominator,
):
    """official/resnet ``learning_rate_with_decay`` (``resnet_run_loop.py``).

    The rate is ``base_learning_rate * batch_size / batch_denominator *
    decay_rates[i]`` after ``int(train_examples / batch_size *
    boundary_epochs[i-1])`` steps (``batch_denom`` 128 for CIFAR-10, 256 for
    ImageNet; 0: no scaling).

    Returns:
      A ``tf.keras.optimizers.schedules.PiecewiseConstantDecay``.
    """
    initial = base_learning_rate * (batch_size / batch_denominator if batch_denominator else 1)
    batches_per_epoch = train_examples / batch_size
    boundaries = [int(batches_per_epoch * e) for e in boundary_epochs]
    values = [initial * d for d in decay_rates]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_schedule(config: configs.ImageClassifierConfig):
    """The learning rate of ``config.lr_schedule`` (a Keras schedule or a float).

    * ``piecewise``: :func:`learning_rate_schedule`;
    * ``exponential``: Slim's ``tf.train.exponential_decay(lr, step,
      int(train_examples * epochs_per_decay / batch_size), lr_decay_factor,
      staircase=True)`` (``train_image_classifier._configure_learning_rate``);
    * ``fixed``: the (scaled) base rate.
    """
    if config.lr_schedule == "piecewise":
        return learning_rate_schedule(config.batch_size, config.train_examples,
                                      config.base_learning_rate, config.boundary_epochs,
                                      config.decay_rates, config.lr_batch_denominator)
    scale = config.batch_size / config.lr_batch_denominator if config.lr_batch_denominator else 1
    initial = config.base_learning_rate * scale
    if config.lr_schedule == "fixed":
        return initial
    decay_steps = max(1, int(config.train_examples * config.epochs_per_decay / config.batch_size))
    return tf.keras.optimizers.schedules.ExponentialDecay(
        initial, decay_steps, config.lr_decay_factor, staircase=True)


def make_optimizer(config: configs.ImageClassifierConfig, schedule):
    """``momentum``: SGD(momentum); ``rmsprop``: RMSprop(rho=rmsprop_decay,
    momentum=rmsprop_momentum, epsilon=opt_epsilon), Slim's flags.

    Keras adds RMSProp's epsilon outside the square root, TF1's
    ``RMSPropOptimizer`` (Slim's) inside it: ``g / (sqrt(ms) + 1)`` against
    ``g / sqrt(ms + 1)`` at epsilon 1.0; both damp the first steps.
    """
    if config.optimizer == "rmsprop":
        return tf.keras.optimizers.RMSprop(learning_rate=schedule, rho=config.rmsprop_decay,
                                           momentum=config.rmsprop_momentum,
                                           epsilon=config.opt_epsilon)
    return tf.keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum)


def _metrics():
    return [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            tf.keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top_5_accuracy")]


def compile_model(model, schedule, momentum: float = configs.ImageClassifierConfig.momentum,
                  optimizer=None,
                  aux_loss_weight: float = configs.ImageClassifierConfig.aux_loss_weight) -> None:
    """Cross-entropy; top-1 (``accuracy``) and ``top_5_accuracy``; SGD with momentum by default.

    A network with auxiliary logits (outputs ``predictions`` and
    ``aux_predictions``, e.g. Inception v3) trains on both losses, the
    auxiliary one weighted by ``aux_loss_weight`` (Slim: 0.4); metrics are of
    ``predictions`` only. Labels then come as ``{name: labels}`` for both
    (:func:`make_dataset` with ``aux=True``).
    """
    optimizer = optimizer or tf.keras.optimizers.SGD(learning_rate=schedule, momentum=momentum)
    if has_aux(model):
        loss = tf.keras.losses.SparseCategoricalCrossentropy()
        model.compile(optimizer=optimizer,
                      loss={"predictions": loss, "aux_predictions": loss},
                      loss_weights={"predictions": 1.0, "aux_predictions": aux_loss_weight},
                      metrics={"predictions": _metrics()})
    else:
        model.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(),
                      metrics=_metrics())


def has_aux(model) -> bool:
    """Whether ``model`` also outputs auxiliary predictions (Slim's ``AuxLogits``)."""
    return len(model.outputs) > 1


def predictions(model, images):
    """``model``'s main softmax output for ``images`` (the auxiliary one dropped)."""
    out = model(images, training=False)
    return out[0] if isinstance(out, (list, tuple)) else out


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


def _decode(image):
    """A transformed image: pixels (CIFAR's graph decodes) or encoded bytes (Slim's datasets)."""
    if image.dtype == tf.string:
        return tf.io.decode_image(image, channels=3, expand_animations=False)
    return image


def _transformed_images(features):
    """The per-example image tensor of a transformed batch (see :func:`_decode`)."""
    return features[IMAGE_KEY] if IMAGE_KEY in features else features[RAW_IMAGE_KEY]


def make_dataset(
    file_pattern: List[str],
    data_accessor,
    tf_transform_output,
    batch_size: int,
    training: bool,
    net: str,
    num_epochs: Optional[int] = None,
    image_size: int = 0,
    aux: bool = False,
) -> tf.data.Dataset:
    """``(images, labels)`` batches from RAW examples: transform graph, then preprocessing.

    Args:
      file_pattern: ``fn_args.train_files`` / ``eval_files`` (ExampleGen output).
      data_accessor: ``fn_args.data_accessor``.
      tf_transform_output: ``tft.TFTransformOutput`` of the Transform run;
        its graph outputs decoded pixels ``image`` (CIFAR-10) or the encoded
        ``image/encoded`` bytes (:mod:`model_garden.schemas.slim_images`),
        decoded here one image at a time (photos of any size).
      batch_size: global batch size.
      training: shuffle and apply the training preprocessing (random
        augmentation); otherwise file order and the eval preprocessing.
      net: the network (its preprocessing and default image size).
      num_epochs: ``None`` repeats forever (every batch full); ``1`` reads
        the files once (the last batch may be smaller; not in training).
      image_size: the network's input side; 0: the net's default.
      aux: labels as ``{"predictions": y, "aux_predictions": y}`` for a
        network with auxiliary logits.

    Returns:
      A prefetched dataset of float32 ``[batch, size, size, 3]`` images and
      int64 ``[batch]`` labels (or the dict above).
    """
    spec = nets.get_net(net)
    preprocess = preprocessing.get_preprocessing(spec.preprocessing)
    preprocess_encoded = preprocessing.get_encoded_preprocessing(spec.preprocessing)
    size = image_size or spec.default_image_size

    def one(image, label):  # encoded bytes (Slim's datasets) or decoded pixels (CIFAR-10)
        if image.dtype == tf.string:
            return preprocess_encoded(image, size, size, is_training=training), label
        return preprocess(image, size, size, is_training=training), label

    ds = inputs.raw_input_fn(
        file_pattern, data_accessor, tf_transform_output, batch_size,
        label_key=LABEL_KEY, shuffle=training, num_epochs=num_epochs,
    ).map(lambda features, labels: (_transformed_images(features), labels))
    ds = (
        ds.unbatch()
        .map(one, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=training)
    )
    if aux:
        ds = ds.map(lambda images, labels: (images, {"predictions": labels,
                                                     "aux_predictions": labels}))
    return inputs.shard_by_data(ds.prefetch(tf.data.AUTOTUNE))


def _eval_batch(images, preprocess, size: int):
    """Eval preprocessing of a batch (pixels ``[N, H, W, 3]`` or encoded ``[N]``)
    -> float32 ``[N, size, size, 3]``."""
    return tf.map_fn(lambda image: preprocess(_decode(image), size, size, is_training=False),
                     images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


#: Classes in the image-bytes signature's top-k outputs (TF-Slim ``label_image``: 5).
TOP_K = 5


def read_label_names(file_patterns: Sequence[str], num_classes: int) -> List[str]:
    """Class names from the ExampleGen's ``label_names.txt`` (line ``i``: label ``i``).

    The file lies beside the ``Split-*`` folders of ``fn_args.train_files``
    (the image ExampleGens write it, offset applied). Without one the names
    are the label numbers.

    Raises:
      ValueError: the file names another number of classes than
        ``num_classes`` (e.g. ImageNet converted with ``--labels-offset 1``,
        1,000 classes, against a config of 1,001: ``--set num_classes=1000``).
    """
    path = os.path.join(os.path.dirname(os.path.dirname(file_patterns[0])), "label_names.txt")
    if not tf.io.gfile.exists(path):
        return [str(i) for i in range(num_classes)]
    with tf.io.gfile.GFile(path) as f:
        names = [line.rstrip("\n") for line in f if line.strip()]
    if len(names) != num_classes:
        raise ValueError(f"{path}: {len(names)} classes, but the Trainer's num_classes is "
                         f"{num_classes} (--set num_classes={len(names)})")
    return names


def _classification_outputs(probabilities, label_names: Sequence[str]):
    k = min(TOP_K, len(label_names))
    top = tf.math.top_k(probabilities, k=k)
    top_classes = tf.cast(top.indices, tf.int64)
    return {
        "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        "probabilities": probabilities,
        "top_k_classes": top_classes,
        "top_k_names": tf.gather(tf.constant(list(label_names)), top_classes),
        "top_k_probabilities": top.values,
    }


def make_signatures(model, tf_transform_output, net: str, image_size: int = 0,
                    label_names: Optional[Sequence[str]] = None):
    """``serving_default`` and ``classify_images`` of the exported SavedModel.

    ``serving_default``: serialized raw tf.Examples ``examples`` string ``[N]``.
    ``classify_images`` (TF-Slim's ``label_image`` use): encoded PNG/JPEG
    ``images`` string ``[N]``, through the Transform graph (so serving decodes
    exactly as training did). Both apply the eval preprocessing and return
    ``classes`` int64 ``[N]``, ``probabilities`` float32 ``[N, num_classes]``
    and the top ``k = min(5, num_classes)``: ``top_k_classes`` int64
    ``[N, k]``, ``top_k_names`` string ``[N, k]`` (from ``label_names``, the
    dataset's ``label_names.txt``, so ImageNet's offset is the one the
    labels were written with) and ``top_k_probabilities`` float32 ``[N, k]``.
    """
    spec = nets.get_net(net)
    preprocess = preprocessing.get_preprocessing(spec.preprocessing)
    size = image_size or spec.default_image_size
    names = list(label_names or [str(i) for i in range(model.outputs[0].shape[-1])])

    def outputs(images):
        return _classification_outputs(predictions(model, _eval_batch(images, preprocess, size)),
                                       names)

    serving_default = export.make_serve_tf_examples_fn(
        model, tf_transform_output, LABEL_KEY, lambda x: x,
        call=lambda transformed: outputs(_transformed_images(transformed)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def classify_images(images):
        transformed = model.tft_layer({RAW_IMAGE_KEY: tf.reshape(images, [-1, 1])})
        return outputs(_transformed_images(transformed))

    return {"serving_default": serving_default, "classify_images": classify_images}


def initial_weights(model, config: configs.ImageClassifierConfig, base_model: Optional[str],
                    initial_epoch: int) -> str:
    """Initial weights, for a fresh run only (Slim's ``init_fn``).

    A run resumed from its own epoch checkpoint (``initial_epoch`` > 0)
    keeps the restored weights: it never goes back to ``checkpoint_path``
    or the base model. A fresh run starts from ``config.checkpoint_path``
    (minus ``checkpoint_exclude_scopes``) if given, else from ``base_model``
    (``--warm-start``) if there is one.

    Returns:
      What the weights came from: ``"resumed"``, ``"checkpoint_path"``,
      ``"base_model"`` or ``"initializers"``.

    Raises:
      model_garden.nets.slim_checkpoint.SlimCheckpointError,
      model_garden.trainers.warm_start.WarmStartError: weights that do not fit.
    """
    if initial_epoch > 0:
        return "resumed"
    if config.checkpoint_path:
        initialize.initialize_from(model, config.checkpoint_path, config.checkpoint_exclude_scopes)
        return "checkpoint_path"
    return "base_model" if warm_start.warm_start(model, base_model) else "initializers"


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

    size = config.input_size
    label_names = read_label_names(fn_args.train_files, config.num_classes)
    previous_policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = nets.build(config.net, config.num_classes, weight_decay=config.weight_decay,
                               image_size=size)
            trainable = initialize.freeze_outside(model, config.trainable_scopes)
            compile_model(model, None, optimizer=make_optimizer(config, make_schedule(config)),
                          aux_loss_weight=config.aux_loss_weight)
            # Create the optimizer's slots now, so a restore fills them at once
            # (slots created later by the first step would start from zero).
            model.optimizer.build(model.trainable_variables)
        aux = has_aux(model)
        train_ds = make_dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                                config.batch_size, training=True, net=config.net,
                                image_size=size, aux=aux)
        eval_ds = make_dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                               config.batch_size, training=False, net=config.net,
                               num_epochs=None if fn_args.eval_steps else 1,
                               image_size=size, aux=aux)
        checkpoint = EpochCheckpoint(os.path.join(fn_args.model_run_dir, "checkpoints"), model,
                                     None if chief else os.path.join(scratch, "checkpoints"))
        initial_epoch = checkpoint.restore()
        initial_weights(model, config, fn_args.base_model, initial_epoch)
        logging.info("%s (%s, %s, batch %d, %d px, %d trainable layers) from epoch %d",
                     model.name, policy, type(strategy).__name__, config.batch_size, size,
                     len(trainable), initial_epoch)
        steps.fit(model, train_ds, eval_ds, fn_args, config, callbacks=[checkpoint, *callbacks],
                  initial_epoch=initial_epoch, validation_freq=config.epochs_between_evals)
        results = model.evaluate(eval_ds, steps=fn_args.eval_steps, return_dict=True, verbose=0)
        logging.info("final evaluation: %s", results)
        signatures = make_signatures(model, tf_transform_output, config.net, size, label_names)
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
