"""MNIST Trainer: the model of tensorflow/models ``official/mnist`` and its ``run_fn``.

Architecture (``official/r1/mnist/mnist.py``, ``create_model``): conv 5x5x32
(same, ReLU) -> max-pool 2x2 -> conv 5x5x64 (same, ReLU) -> max-pool 2x2 ->
dense 1024 (ReLU) -> dropout 0.4 -> dense 10 (logits); Adam. 3,274,634
parameters.
"""


from model_garden.schemas import mnist as mnist_schema
from model_garden.trainers import configs, export, inputs, steps, strategies, warm_start

NUM_CLASSES = 10


def learning_rate_of(learning_rate: float, schedule: str, train_steps: int):
    """Adam's rate: ``learning_rate`` as is (``constant``), or a cosine decay to 0
    over ``train_steps`` steps (``cosine``, ``tf.keras.optimizers.schedules.CosineDecay``).

    Raises:
      ValueError: an unknown schedule, or ``cosine`` without a positive ``train_steps``.
    """
    import tensorflow as tf

    if schedule == "constant":
        return learning_rate
    if schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {schedule!r}: one of {configs.LR_SCHEDULES}")
    if not train_steps or train_steps < 1:
        raise ValueError(f"the cosine schedule needs train_steps >= 1, not {train_steps!r}")
    return tf.keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=int(train_steps))


def build_model(learning_rate=configs.MnistConfig.learning_rate):
    """The official MNIST CNN as a compiled Keras model.

    Args:
      learning_rate: Adam learning rate, a float or a Keras schedule
        (:func:`learning_rate_of`; official/mnist: constant 1e-4).

    Returns:
      A ``tf.keras.Model`` taking ``{"image": float32 [N, 28, 28, 1]}`` and
      returning logits float32 ``[N, 10]``, compiled with sparse categorical
      cross-entropy and accuracy.
    """
    import tensorflow as tf

    layers = tf.keras.layers
    image = tf.keras.Input(shape=(28, 28, 1), name=mnist_schema.IMAGE_KEY)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(image)
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.4)(x)
    logits = layers.Dense(NUM_CLASSES, name="logits")(x)
    model = tf.keras.Model({mnist_schema.IMAGE_KEY: image}, logits, name="mnist")
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def classification_outputs(logits):
    """``{"classes": int64 [N], "probabilities": float32 [N, 10]}`` from logits."""
    import tensorflow as tf

    return {
        "classes": tf.argmax(logits, axis=-1),
        "probabilities": tf.nn.softmax(logits, axis=-1),
    }


def make_classify_fn(model):
    """The ``classify`` signature: a float image batch -> classes and probabilities.

    The input ``image`` is float32 ``[N, 28, 28]`` or ``[N, 28, 28, 1]`` with
    pixels in [0, 1] (what the Transform graph produces), as in the
    ``saved_model_cli`` example of the official mnist README.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.float32, name="image")])
    def classify(image):
        image = tf.reshape(image, [-1, 28, 28, 1])
        return classification_outputs(model({mnist_schema.IMAGE_KEY: image}, training=False))

    return classify


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (``tfx.v1.components.FnArgs`` in, SavedModel out).

    ``fn_args.custom_config``: the fields of
    :class:`~model_garden.trainers.configs.MnistConfig` (``batch_size``,
    ``learning_rate``, ``lr_schedule``, ``strategy``, ``steps_per_epoch``).

    Writes the SavedModel to ``fn_args.serving_model_dir`` with signatures
    ``serving_default`` (serialized raw tf.Examples) and ``classify`` (float
    images), and TensorBoard logs to ``fn_args.model_run_dir``.
    """
    import tensorflow_transform as tft

    config = configs.from_custom_config(configs.MnistConfig, fn_args.custom_config)
    batch_size = config.batch_size
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = strategies.get_strategy(config.strategy)

    train_ds = inputs.input_fn(
        fn_args.train_files, fn_args.data_accessor, tf_transform_output,
        batch_size, mnist_schema.LABEL_KEY,
    )
    eval_ds = inputs.input_fn(
        fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
        batch_size, mnist_schema.LABEL_KEY, shuffle=False,
    )
    with strategy.scope():
        model = build_model(learning_rate_of(config.learning_rate, config.lr_schedule,
                                             fn_args.train_steps))
        warm_start.warm_start(model, fn_args.base_model)

    steps.fit(model, train_ds, eval_ds, fn_args, config)
    signatures = {
        "serving_default": export.make_serve_tf_examples_fn(
            model, tf_transform_output, mnist_schema.RAW_LABEL_KEY, classification_outputs
        ),
        "classify": make_classify_fn(model),
    }
    export.save(model, fn_args.serving_model_dir, signatures)
