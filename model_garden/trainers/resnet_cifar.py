"""ResNet for CIFAR-10 (v1 and pre-activation v2), Keras, as a TFX ``run_fn``.

Sources:

* v1: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
  arXiv:1512.03385, section 4.2: 6n+2 weighted layers (a 3x3 conv, three
  stages of n two-conv basic blocks with 16, 32, 64 filters on 32x32, 16x16,
  8x8 maps, global average pooling, a 10-way fully connected layer);
  ResNet-20/32/44/56/110 have n = 3/5/7/9/18 and 0.27/0.46/0.66/0.85/1.7M
  parameters.
* v2: He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks",
  arXiv:1603.05027: pre-activation blocks (BN-ReLU-conv), a final BN-ReLU.
* tensorflow/models ``official/resnet`` (``resnet_model.py``,
  ``cifar10_main.py``, ``resnet_run_loop.py``): batch-norm decay 0.997 and
  epsilon 1e-5, fixed padding for strided convolutions, input pipeline
  (pad to 40x40, random 32x32 crop, random left-right flip, per-image
  standardization), SGD momentum 0.9, learning rate 0.1 x batch/128 with
  boundaries at epochs 91, 136, 182 and multipliers 1, 0.1, 0.01, 0.001,
  L2 weight decay 2e-4 on every trainable variable except batch norm,
  batch 128, 182 epochs.

Shortcuts: ``"identity"`` (default) is the paper's option A for CIFAR
(identity; where the shape changes, stride-2 subsampling and zero-padded
channels), which gives the paper's parameter counts; ``"projection"`` is
official/resnet's (a 1x1 convolution, plus BN in v1, on the first block of
every stage), 3,040 (v1) or 2,816 (v2) parameters more.

Weight decay: official/resnet adds ``weight_decay * sum(tf.nn.l2_loss(v))``
= ``weight_decay / 2 * sum(v**2)``; Keras' ``l2(x)`` adds ``x * sum(v**2)``,
so each layer gets ``l2(weight_decay / 2)``.

The Trainer reads RAW examples (``Transform(materialize=False)``) and
applies the transform graph in ``tf.data``
(:func:`model_garden.trainers.inputs.raw_input_fn`; see
:mod:`model_garden.schemas.cifar10`).
"""

import logging
import math
import os
import shutil
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence

import tensorflow as tf

from model_garden.schemas import cifar10 as cifar_schema
from model_garden.trainers import export, inputs, strategies, warm_start
from model_garden.trainers.checkpoints import EpochCheckpoint, is_chief

DEPTHS = (20, 32, 44, 56, 110)
BN_MOMENTUM = 0.997  # official/resnet _BATCH_NORM_DECAY
BN_EPSILON = 1e-5  # official/resnet _BATCH_NORM_EPSILON
IMAGE_SHAPE = (cifar_schema.HEIGHT, cifar_schema.WIDTH, cifar_schema.CHANNELS)
PAD = 4  # pad 32 -> 40, then crop 32 (official: HEIGHT + 8)

# Defaults of fn_args.custom_config (official/resnet cifar10_main.py).
DEFAULTS: Dict[str, Any] = {
    "depth": 20,
    "version": 1,
    "shortcut": "identity",
    "batch_size": 128,
    "base_learning_rate": 0.1,  # for batch 128; scaled by batch / 128
    "momentum": 0.9,
    "weight_decay": 2e-4,
    "epochs": 182,
    "train_examples": 50000,  # one epoch; sets the schedule's step boundaries
    "boundary_epochs": [91, 136, 182],
    "decay_rates": [1.0, 0.1, 0.01, 0.001],
    "epochs_between_evals": 10,
    "strategy": "auto",
    "mixed_precision": "auto",
}


class PerImageStandardization(tf.keras.layers.Layer):
    """``tf.image.per_image_standardization`` as the model's first layer.

    Input: any-dtype ``[N, H, W, C]`` pixels (int64 0..255 from Transform).
    Output: float32 ``[N, H, W, C]``, each image with mean 0 and standard
    deviation 1 (at least ``1/sqrt(H*W*C)``), as official/resnet
    ``cifar10_main.preprocess_image`` does. Always computed in float32.
    """

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def call(self, images):
        return tf.image.per_image_standardization(tf.cast(images, tf.float32))


def _conv(filters, kernel_size, strides, weight_decay, name):
    """Conv without bias; official ``conv2d_fixed_padding`` for strides > 1."""
    conv = tf.keras.layers.Conv2D(
        filters, kernel_size, strides=strides,
        padding="same" if strides == 1 else "valid", use_bias=False,
        kernel_initializer=tf.keras.initializers.VarianceScaling(),  # official
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2),
        name=name,
    )
    if strides == 1:
        return conv
    pad = (kernel_size - 1) // 2, (kernel_size - 1) - (kernel_size - 1) // 2

    def padded(x):
        x = tf.keras.layers.ZeroPadding2D((pad, pad), name=name + "_pad")(x)
        return conv(x)

    return padded


def _bn(name):
    return tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


class ZeroPadShortcut(tf.keras.layers.Layer):
    """Option A shortcut (He et al. 2015, sec. 3.3): no parameters.

    ``[N, H, W, C]`` -> ``[N, ceil(H/s), ceil(W/s), filters]``: every
    ``strides``-th pixel, channels ``C..filters-1`` zero.
    """

    def __init__(self, filters: int, strides: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, x):
        x = x[:, :: self.strides, :: self.strides, :]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.filters - x.shape[-1]]])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _identity_shortcut(x, filters, strides, name):
    """Option A: ``x`` itself, or :class:`ZeroPadShortcut` where the shape changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return ZeroPadShortcut(filters, strides, name=name)(x)


def _block_v1(x, filters, strides, shortcut, wd, name):
    """Basic block v1: conv-BN-ReLU-conv-BN, + shortcut, ReLU."""
    if shortcut == "projection" and strides is not None:
        sc = _conv(filters, 1, strides, wd, name + "_proj")(x)
        sc = _bn(name + "_proj_bn")(sc)
    else:
        sc = _identity_shortcut(x, filters, strides or 1, name + "_shortcut")
    y = _conv(filters, 3, strides or 1, wd, name + "_conv1")(x)
    y = tf.keras.layers.ReLU(name=name + "_relu1")(_bn(name + "_bn1")(y))
    y = _conv(filters, 3, 1, wd, name + "_conv2")(y)
    y = _bn(name + "_bn2")(y)
    y = tf.keras.layers.Add(name=name + "_add")([y, sc])
    return tf.keras.layers.ReLU(name=name + "_out")(y)


def _block_v2(x, filters, strides, shortcut, wd, name):
    """Pre-activation block: BN-ReLU-conv-BN-ReLU-conv, + shortcut."""
    pre = tf.keras.layers.ReLU(name=name + "_relu1")(_bn(name + "_bn1")(x))
    if shortcut == "projection" and strides is not None:
        sc = _conv(filters, 1, strides, wd, name + "_proj")(pre)
    else:
        sc = _identity_shortcut(x, filters, strides or 1, name + "_shortcut")
    y = _conv(filters, 3, strides or 1, wd, name + "_conv1")(pre)
    y = tf.keras.layers.ReLU(name=name + "_relu2")(_bn(name + "_bn2")(y))
    y = _conv(filters, 3, 1, wd, name + "_conv2")(y)
    return tf.keras.layers.Add(name=name + "_add")([y, sc])


def build_resnet(
    depth: int,
    version: int = 1,
    num_classes: int = 10,
    weight_decay: float = 2e-4,
    shortcut: str = "identity",
) -> tf.keras.Model:
    """The CIFAR ResNet with ``depth`` = 6n+2 layers.

    Args:
      depth: 20, 32, 44, 56, 110 (any 6n+2 with n >= 1).
      version: 1 (He et al. 2015) or 2 (pre-activation, He et al. 2016).
      num_classes: outputs of the final dense layer.
      weight_decay: official/resnet's ``weight_decay`` (see module docstring).
      shortcut: ``"identity"`` (paper option A) or ``"projection"``
        (official/resnet).

    Returns:
      An uncompiled ``tf.keras.Model`` named ``resnet<depth>_v<version>``:
      input ``image`` int64 (any real or integer dtype works) ``[N, 32, 32,
      3]`` pixels 0..255; output float32 softmax probabilities
      ``[N, num_classes]`` (float32 also under a mixed-precision policy).

    Raises:
      ValueError: a depth not 6n+2, a version not 1 or 2, or an unknown
        shortcut.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
    if version not in (1, 2):
        raise ValueError(f"ResNet version must be 1 or 2, got {version}")
    if shortcut not in ("identity", "projection"):
        raise ValueError(f"shortcut must be 'identity' or 'projection', got {shortcut!r}")
    n = (depth - 2) // 6
    block = _block_v1 if version == 1 else _block_v2
    wd = weight_decay

    inputs = tf.keras.Input(IMAGE_SHAPE, dtype=tf.int64, name=cifar_schema.IMAGE_KEY)
    x = PerImageStandardization(name="standardize")(inputs)
    x = _conv(16, 3, 1, wd, "conv1")(x)
    if version == 1:  # v2: the first block's pre-activation does this
        x = tf.keras.layers.ReLU(name="conv1_relu")(_bn("conv1_bn")(x))
    for stage, (filters, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        for i in range(n):
            # strides=None marks blocks without a projection (all but the first).
            strides = stride if i == 0 else None
            x = block(x, filters, strides, shortcut, wd, f"stage{stage}_block{i + 1}")
    if version == 2:
        x = tf.keras.layers.ReLU(name="final_relu")(_bn("final_bn")(x))
    x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = tf.keras.layers.Dense(
        num_classes,
        kernel_regularizer=tf.keras.regularizers.l2(wd / 2),
        bias_regularizer=tf.keras.regularizers.l2(wd / 2),
        name="logits",
    )(x)
    outputs = tf.keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return tf.keras.Model(inputs, outputs, name=f"resnet{depth}_v{version}")


def augment(image, label, seed=None):
    """Training augmentation of official/resnet ``cifar10_main.preprocess_image``.

    Zero-pads 4 pixels on each side (32 -> 40), takes a random 32x32 crop and
    flips left-right with probability 1/2.

    Args:
      image: ``[32, 32, 3]`` pixels, any dtype (int64 from Transform).
      label: passed through unchanged.
      seed: optional int32 ``[2]`` seed for the stateless random ops
        (reproducible); ``None`` draws a fresh one each call.

    Returns:
      ``(image, label)``, the image with the same shape and dtype.
    """
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    size = IMAGE_SHAPE[0] + 2 * PAD
    padded = tf.image.resize_with_crop_or_pad(image, size, size)
    cropped = tf.image.stateless_random_crop(padded, IMAGE_SHAPE, seed=seeds[0])
    flipped = tf.image.stateless_random_flip_left_right(cropped, seed=seeds[1])
    return tf.ensure_shape(flipped, IMAGE_SHAPE), label


def learning_rate_schedule(
    batch_size: int,
    train_examples: int,
    base_learning_rate: float = 0.1,
    boundary_epochs: Sequence[int] = (91, 136, 182),
    decay_rates: Sequence[float] = (1.0, 0.1, 0.01, 0.001),
):
    """official/resnet ``learning_rate_with_decay`` (batch_denom 128).

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


def compile_model(model, schedule, momentum: float = 0.9) -> None:
    """SGD with momentum; cross-entropy; top-1 and top-5 accuracy."""
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
    when a GPU is visible, else ``float32``. Otherwise one of ``float32``,
    ``mixed_float16``, ``mixed_bfloat16``.
    """
    if name == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            return "mixed_bfloat16"
        return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"
    if name not in ("float32", "mixed_float16", "mixed_bfloat16"):
        raise ValueError(f"mixed_precision must be auto, float32, mixed_float16 "
                         f"or mixed_bfloat16, got {name!r}")
    return name


def _config(custom_config: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    config = dict(DEFAULTS)
    config.update(custom_config or {})
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown custom_config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    for key in ("depth", "batch_size", "epochs", "train_examples", "epochs_between_evals"):
        config[key] = int(config[key])
    config["version"] = int(str(config["version"]).lstrip("v"))
    for key in ("base_learning_rate", "momentum", "weight_decay"):
        config[key] = float(config[key])
    return config


def make_dataset(
    file_pattern: List[str],
    data_accessor,
    tf_transform_output,
    batch_size: int,
    training: bool,
    num_epochs: Optional[int] = None,
) -> tf.data.Dataset:
    """``(images, labels)`` batches from RAW examples through the transform graph.

    :func:`model_garden.trainers.inputs.raw_input_fn` reads the raw
    examples and applies the transform graph; for training the batches are
    then augmented image by image (:func:`augment`) and batched again.

    Args:
      file_pattern: ``fn_args.train_files`` / ``eval_files`` (ExampleGen output).
      data_accessor: ``fn_args.data_accessor``.
      tf_transform_output: ``tft.TFTransformOutput`` of the Transform run.
      batch_size: global batch size.
      training: shuffle and augment (:func:`augment`); otherwise file order.
      num_epochs: ``None`` repeats forever (every batch full); ``1`` reads
        the files once (the last batch may be smaller; not in training).

    Returns:
      A prefetched dataset of int64 ``[batch, 32, 32, 3]`` images (0..255)
      and int64 ``[batch]`` labels.
    """
    ds = inputs.raw_input_fn(
        file_pattern, data_accessor, tf_transform_output, batch_size,
        label_key=cifar_schema.LABEL_KEY, shuffle=training, num_epochs=num_epochs,
    ).map(lambda features, labels: (features[cifar_schema.IMAGE_KEY], labels))
    if training:
        ds = (
            ds.unbatch()
            .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True)
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def _classification_outputs(probabilities):
    return {
        "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        "probabilities": probabilities,
    }


def make_classify_images_fn(model):
    """``classify_images``: encoded PNG/JPEG strings ``[N]`` -> classes, probabilities.

    Decodes with the Transform graph (``model.tft_layer``, set by
    :func:`model_garden.trainers.export.make_serve_tf_examples_fn`), so
    serving decodes exactly as training did; images must be 32x32.

    Returns:
      A ``tf.function`` with input ``images`` string ``[None]`` and outputs
      ``classes`` int64 ``[N]``, ``probabilities`` float32 ``[N, 10]``.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def classify_images(images):
        transformed = model.tft_layer({cifar_schema.RAW_IMAGE_KEY: tf.reshape(images, [-1, 1])})
        return _classification_outputs(model(transformed[cifar_schema.IMAGE_KEY]))

    return classify_images


def train(fn_args, callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.Model:
    """Trains (resuming from ``model_run_dir`` checkpoints) and exports.

    Args:
      fn_args: the Trainer's ``FnArgs``; ``train_steps`` total steps (``None``:
        ``epochs`` epochs), ``eval_steps`` batches per evaluation.
      callbacks: extra Keras callbacks (run after the checkpoint callback).

    Returns:
      The trained model (also saved to ``fn_args.serving_model_dir``).
    """
    import tensorflow_transform as tft

    config = _config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = strategies.get_strategy(config["strategy"])
    policy = precision_policy(config["mixed_precision"], strategy)
    batch_size = config["batch_size"]
    steps_per_epoch = math.ceil(config["train_examples"] / batch_size)
    total_steps = int(fn_args.train_steps or config["epochs"] * steps_per_epoch)
    steps_per_epoch = min(steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    chief = is_chief(strategy)
    scratch = None if chief else tempfile.mkdtemp(prefix="resnet_cifar_worker")
    run_dir = fn_args.model_run_dir if chief else scratch

    train_ds = make_dataset(fn_args.train_files, fn_args.data_accessor,
                            tf_transform_output, batch_size, training=True)
    # Without eval_steps, evaluate every eval example once.
    eval_ds = make_dataset(fn_args.eval_files, fn_args.data_accessor,
                           tf_transform_output, batch_size, training=False,
                           num_epochs=None if fn_args.eval_steps else 1)
    previous_policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = build_resnet(config["depth"], config["version"],
                                 weight_decay=config["weight_decay"],
                                 shortcut=config["shortcut"])
            schedule = learning_rate_schedule(
                batch_size, config["train_examples"], config["base_learning_rate"],
                config["boundary_epochs"], config["decay_rates"],
            )
            compile_model(model, schedule, config["momentum"])
            # Create the momentum slots now, so a restore fills them at once
            # (slots created later by the first step would start from zero).
            model.optimizer.build(model.trainable_variables)
        checkpoint_dir = os.path.join(fn_args.model_run_dir, "checkpoints")
        checkpoint = EpochCheckpoint(checkpoint_dir, model,
                                     None if chief else os.path.join(scratch, "checkpoints"))
        initial_epoch = checkpoint.restore()
        if initial_epoch == 0:  # a resumed run continues from its own checkpoint
            warm_start.warm_start(model, fn_args.base_model)
        logging.info(
            "%s (%s, %s): %d steps = %d epochs of %d at batch %d, from epoch %d",
            model.name, policy, type(strategy).__name__, total_steps, epochs,
            steps_per_epoch, batch_size, initial_epoch,
        )
        model.fit(
            train_ds,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=eval_ds,
            validation_steps=fn_args.eval_steps,
            validation_freq=config["epochs_between_evals"],
            callbacks=[
                checkpoint,
                tf.keras.callbacks.TensorBoard(log_dir=run_dir, update_freq="epoch"),
                *callbacks,
            ],
            verbose=2,
        )
        results = model.evaluate(eval_ds, steps=fn_args.eval_steps, return_dict=True, verbose=0)
        logging.info("final evaluation: %s", results)
        signatures = {
            "serving_default": export.make_serve_tf_examples_fn(
                model, tf_transform_output, cifar_schema.LABEL_KEY, _classification_outputs
            ),
            "classify_images": make_classify_images_fn(model),
        }
        export.save(model, fn_args.serving_model_dir if chief else os.path.join(scratch, "model"),
                    signatures)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return model


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: :func:`train` with ``fn_args.custom_config``.

    ``custom_config`` keys and defaults: :data:`DEFAULTS` (official/resnet
    CIFAR-10 hyperparameters). ``train_steps`` is the total number of steps;
    epochs are ``ceil(train_examples / batch_size)`` steps (the checkpoint
    and TensorBoard granularity). Writes checkpoints to
    ``<model_run_dir>/checkpoints`` (resumed after a killed Trainer when the
    orchestrator retries the same execution), TensorBoard logs to
    ``model_run_dir`` and the SavedModel with signatures ``serving_default``
    (serialized raw tf.Examples -> ``classes`` int64 [N], ``probabilities``
    float32 [N, 10]) and ``classify_images`` (encoded PNG/JPEG [N] -> same)
    to ``serving_model_dir``.
    """
    train(fn_args)
