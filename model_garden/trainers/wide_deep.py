"""The official census wide & deep models in Keras, and their TFX ``run_fn``.

Source: tensorflow/models ``official/r1/wide_deep`` (``census_main.py``
``build_estimator`` and ``census_dataset.py`` ``build_model_columns``). The
feature columns there become Transform outputs
(:mod:`model_garden.schemas.census`); every model input is ``[batch, 1]``.

``kind``:

``wide``
    ``LinearClassifier(wide_columns)``: one linear layer (zero-initialized, as
    the estimator's) over the concatenated one-hot vectors of the 8 wide
    columns: education, marital_status, relationship, workclass (vocabulary
    ids), occupation (1,000 hash buckets), age_bucket (11), and the crosses
    education x occupation and age_bucket x education x occupation (1,000
    hash buckets each).
``deep``
    ``DNNClassifier(deep_columns, hidden_units=[100, 75, 50, 25])``, ReLU: the
    5 z-scored numerics, one-hot indicators of the 4 vocabulary columns and an
    8-dim embedding of the occupation hash.
``wide_deep``
    ``DNNLinearCombinedClassifier``: the two logits summed.

Every model outputs ``sigmoid(logits)``, ``[batch, 1]`` float32 = P(>50K).

Optimizers: those of the canned estimators the official model builds with
their defaults (tensorflow_estimator ``canned/linear.py``, ``canned/dnn.py``,
``canned/dnn_linear_combined.py``): ``wide`` FTRL at
``min(0.2, 1/sqrt(8 wide columns)) = 0.2``; ``deep`` Adagrad at 0.05;
``wide_deep`` FTRL at ``min(0.005, 1/sqrt(8)) = 0.005`` on the wide weights
and Adagrad at 0.001 on the deep ones (one optimizer per part, as the
estimator; :class:`WideDeepClassifier` applies both).

Loss reduction (``loss_reduction``): the official model (TensorFlow 1.x)
builds the v1 estimators, whose head sums the per-example sigmoid
cross-entropy over the batch (``loss_reduction=tf.compat.v1.losses.Reduction.SUM``
in tensorflow_estimator ``canned/linear.py`` ``LinearClassifier``,
``canned/dnn.py`` ``DNNClassifier``, ``canned/dnn_linear_combined.py``
``DNNLinearCombinedClassifier``; ``canned/head.py`` reduces with
``compute_weighted_loss(..., reduction=SUM)``), and both optimizers of
``wide_deep`` minimize that one summed loss. Keras (and the TF2 ``*V2``
estimators) average it instead (``SUM_OVER_BATCH_SIZE``), so every gradient
is ``batch_size`` times smaller. FTRL and Adagrad divide by
``sqrt(initial_accumulator_value + sum of squared gradients)``, with
``initial_accumulator_value=0.1``: for a weight whose gradients are small
(a rare hash bucket or cross, seen by one example of a batch: ``|g| <=
1/40`` with the mean), the 0.1 dominates for hundreds of updates and its
steps are up to ``batch_size`` times smaller than the estimator's.
``"sum"`` reproduces the estimator (``tf.keras.losses.Reduction.SUM``); the
reported ``loss`` is then the per-batch sum, as the estimator's ``loss``.
Measured on a validation split of ``adult.data``
(``benchmarks/census_loss_reduction.py``), the sum matters for ``wide_deep``
(+0.85 points of accuracy), and through its deep part (Adagrad at 0.001),
not through FTRL on the rare wide features; the default is therefore per
model type (:data:`~model_garden.trainers.configs.CENSUS_DEFAULT_LOSS_REDUCTION`).

Other differences from the official model: the deep part's numerics are
z-scored by Transform (the official feeds raw values); a vocabulary value
unseen in training gets its own OOV id (the official maps it to an all-zero
indicator); the optimizers are the Keras ones (same defaults:
``initial_accumulator_value=0.1``, FTRL ``learning_rate_power=-0.5``).
"""

import math
from typing import Dict, Mapping, Optional

import tensorflow as tf

from model_garden.schemas import census
from model_garden.trainers import configs

KINDS = tuple(configs.CENSUS_LEARNING_RATES)  # wide, deep, wide_deep
HIDDEN_UNITS = (100, 75, 50, 25)
OCCUPATION_EMBEDDING_DIM = 8
WIDE_KEYS = tuple(census.vocab_key(n) for n in census.VOCAB_FEATURES) + (
    census.OCCUPATION_KEY,
    census.AGE_BUCKET_KEY,
    census.EDUCATION_X_OCCUPATION_KEY,
    census.AGE_X_EDUCATION_X_OCCUPATION_KEY,
)


def default_learning_rates(kind: str):
    """``(wide FTRL rate, deep Adagrad rate)`` of the canned estimator for ``kind``.

    :data:`model_garden.trainers.configs.CENSUS_LEARNING_RATES`, the FTRL rate
    capped at ``1/sqrt(#wide columns)`` as ``LinearClassifier`` does; ``None``
    where ``kind`` has no such part.
    """
    wide, deep = configs.CENSUS_LEARNING_RATES[kind]
    return (None if wide is None else min(wide, 1 / math.sqrt(len(WIDE_KEYS)))), deep


PREDICTION_KEY = "probabilities"


class WideDeepClassifier(tf.keras.Model):
    """A functional model whose ``deep`` part may have its own optimizer.

    With :attr:`dnn_optimizer` set (``wide_deep``), the compiled optimizer
    trains the ``wide`` sub-model and :attr:`dnn_optimizer` the ``deep`` one,
    as ``DNNLinearCombinedClassifier``'s ``linear_optimizer`` and
    ``dnn_optimizer`` (Keras' ``WideDeepModel`` does the same with a list of
    optimizers, which a SavedModel cannot record as ``model.optimizer``).
    """

    dnn_optimizer = None

    def train_step(self, data):
        if self.dnn_optimizer is None:
            return super().train_step(data)
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        wide = self.get_layer("wide").trainable_variables
        deep = self.get_layer("deep").trainable_variables
        wide_grads, deep_grads = tape.gradient(loss, (wide, deep))
        self.optimizer.apply_gradients(zip(wide_grads, wide))
        self.dnn_optimizer.apply_gradients(zip(deep_grads, deep))
        return self.compute_metrics(x, y, y_pred, sample_weight)


def _vocab_sizes(vocab_sizes: Optional[Mapping[str, int]]) -> Dict[str, int]:
    sizes = {n: census.vocab_size(n) for n in census.VOCAB_FEATURES}
    sizes.update(vocab_sizes or {})
    return sizes


def wide_sizes(vocab_sizes: Optional[Mapping[str, int]] = None) -> Dict[str, int]:
    """Number of ids of each wide input (one-hot width)."""
    sizes = {census.vocab_key(n): s for n, s in _vocab_sizes(vocab_sizes).items()}
    sizes[census.OCCUPATION_KEY] = census.HASH_BUCKET_SIZE
    sizes[census.AGE_BUCKET_KEY] = census.NUM_AGE_BUCKETS
    sizes[census.EDUCATION_X_OCCUPATION_KEY] = census.HASH_BUCKET_SIZE
    sizes[census.AGE_X_EDUCATION_X_OCCUPATION_KEY] = census.HASH_BUCKET_SIZE
    return sizes


def _inputs() -> Dict[str, tf.keras.Input]:
    inputs = {
        census.numeric_key(n): tf.keras.Input(
            (1,), name=census.numeric_key(n), dtype=tf.float32
        )
        for n in census.NUMERIC_FEATURES
    }
    for key in WIDE_KEYS:
        inputs[key] = tf.keras.Input((1,), name=key, dtype=tf.int64)
    return inputs


def _one_hot(x, size: int, name: str):
    return tf.keras.layers.CategoryEncoding(
        size, output_mode="one_hot", name=f"{name}_one_hot"
    )(x)


def _wide_part(inputs, vocab_sizes) -> tf.keras.Model:
    """Linear model on the one-hot wide columns -> logits ``[batch, 1]``."""
    sizes = wide_sizes(vocab_sizes)
    part_inputs = {k: inputs[k] for k in WIDE_KEYS}
    one_hots = [_one_hot(part_inputs[k], sizes[k], k) for k in WIDE_KEYS]
    x = tf.keras.layers.Concatenate(name="wide_features")(one_hots)
    logits = tf.keras.layers.Dense(1, kernel_initializer="zeros", name="wide_logits")(x)
    return tf.keras.Model(part_inputs, logits, name="wide")


def _deep_part(inputs, vocab_sizes) -> tf.keras.Model:
    """DNN 100-75-50-25 on numerics, indicators, embedding -> logits."""
    sizes = _vocab_sizes(vocab_sizes)
    keys = [census.numeric_key(n) for n in census.NUMERIC_FEATURES]
    keys += [census.vocab_key(n) for n in census.VOCAB_FEATURES] + [census.OCCUPATION_KEY]
    part_inputs = {k: inputs[k] for k in keys}
    features = [part_inputs[census.numeric_key(n)] for n in census.NUMERIC_FEATURES]
    features += [
        _one_hot(part_inputs[census.vocab_key(n)], sizes[n], census.vocab_key(n))
        for n in census.VOCAB_FEATURES
    ]
    # embedding_column's default initializer: truncated normal, 1/sqrt(dim).
    embedding = tf.keras.layers.Embedding(
        census.HASH_BUCKET_SIZE,
        OCCUPATION_EMBEDDING_DIM,
        embeddings_initializer=tf.keras.initializers.TruncatedNormal(
            stddev=1 / math.sqrt(OCCUPATION_EMBEDDING_DIM)
        ),
        name="occupation_embedding",
    )(part_inputs[census.OCCUPATION_KEY])
    features.append(tf.keras.layers.Reshape((OCCUPATION_EMBEDDING_DIM,))(embedding))
    x = tf.keras.layers.Concatenate(name="deep_features")(features)
    for i, units in enumerate(HIDDEN_UNITS):
        x = tf.keras.layers.Dense(units, activation="relu", name=f"hiddenlayer_{i}")(x)
    logits = tf.keras.layers.Dense(1, name="deep_logits")(x)
    return tf.keras.Model(part_inputs, logits, name="deep")


def build_model(
    kind: str,
    vocab_sizes: Optional[Mapping[str, int]] = None,
    learning_rate: Optional[float] = None,
    dnn_learning_rate: Optional[float] = None,
    loss_reduction: Optional[str] = None,
) -> tf.keras.Model:
    """The compiled census model ``kind``.

    Args:
      kind: ``"wide"``, ``"deep"`` or ``"wide_deep"``.
      vocab_sizes: ids per vocabulary column (entries + OOV), keyed by raw
        name; default :func:`model_garden.schemas.census.vocab_size`.
      learning_rate: FTRL rate of the wide part (``wide``, ``wide_deep``) or
        Adagrad rate (``deep``); default :func:`default_learning_rates`.
      dnn_learning_rate: Adagrad rate of the deep part of ``wide_deep``.
      loss_reduction: ``"sum"`` (the TF1 canned estimators': the summed
        per-example cross-entropy of a batch) or ``"sum_over_batch_size"``
        (its mean); the loss every optimizer minimizes; default
        :data:`model_garden.trainers.configs.CENSUS_DEFAULT_LOSS_REDUCTION`
        of ``kind``. See
        :attr:`model_garden.trainers.configs.WideDeepConfig.loss_reduction`.

    Returns:
      A compiled :class:`WideDeepClassifier` taking the dict of transformed
      ``[batch, 1]`` features and returning ``[batch, 1]`` probabilities,
      with sub-models ``wide`` and/or ``deep``.

    Raises:
      ValueError: unknown ``kind`` or ``loss_reduction``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    loss_reduction = loss_reduction or configs.CENSUS_DEFAULT_LOSS_REDUCTION[kind]
    if loss_reduction not in configs.CENSUS_LOSS_REDUCTIONS:
        raise ValueError(f"unknown loss_reduction {loss_reduction!r}; choose one of "
                         f"{configs.CENSUS_LOSS_REDUCTIONS}")
    inputs = _inputs()
    wide_lr, deep_lr = default_learning_rates(kind)
    parts, optimizers = [], []
    if kind in ("wide", "wide_deep"):
        parts.append(_wide_part(inputs, vocab_sizes))
        optimizers.append(tf.keras.optimizers.Ftrl(learning_rate or wide_lr))
    if kind in ("deep", "wide_deep"):
        parts.append(_deep_part(inputs, vocab_sizes))
        if kind == "deep":
            dnn_learning_rate = learning_rate
        optimizers.append(tf.keras.optimizers.Adagrad(dnn_learning_rate or deep_lr))
    logits = [part({k: inputs[k] for k in part.input_names}) for part in parts]
    total = logits[0] if len(logits) == 1 else tf.keras.layers.Add(name="logits")(logits)
    probabilities = tf.keras.layers.Activation("sigmoid", name=PREDICTION_KEY)(total)
    used = sorted(set().union(*(part.input_names for part in parts)))
    model = WideDeepClassifier(
        {k: inputs[k] for k in used}, probabilities, name=f"census_{kind}"
    )
    if len(optimizers) == 2:
        model.dnn_optimizer = optimizers[1]
    model.compile(
        optimizer=optimizers[0],
        loss=tf.keras.losses.BinaryCrossentropy(reduction=loss_reduction),
        metrics=[
            tf.keras.metrics.BinaryAccuracy(name="binary_accuracy"),
            tf.keras.metrics.AUC(name="auc"),
            tf.keras.metrics.Precision(name="precision"),
            tf.keras.metrics.Recall(name="recall"),
        ],
    )
    return model


def serving_outputs(probabilities) -> Dict[str, tf.Tensor]:
    """Model output ``[N, 1]`` -> the serving signatures' outputs.

    ``probabilities`` ``[N, 1]`` float32, P(>50K) (the Evaluator's
    ``prediction_key``); ``class_ids`` ``[N, 1]`` int64 (1 = ``>50K``, at
    0.5); ``classes`` ``[N, 1]`` string label; ``all_classes`` ``[N, 2]``
    string, ``["<=50K", ">50K"]`` per row: TFMA uses it as the label
    vocabulary, so the raw string label ``income_bracket`` maps to 0/1.
    """
    labels = tf.constant(census.LABEL_CLASSES)
    class_ids = tf.cast(probabilities >= 0.5, tf.int64)
    return {
        PREDICTION_KEY: probabilities,
        "class_ids": class_ids,
        "classes": tf.gather(labels, class_ids),
        "all_classes": tf.tile(labels[tf.newaxis, :], [tf.shape(probabilities)[0], 1]),
    }


def make_predict_raw_fn(model, tf_transform_output):
    """The ``predict_raw`` signature: the 14 raw columns as named ``[N]`` tensors.

    int64 for the numeric columns, string for the others (``"?"`` = unknown),
    e.g. the TF Serving REST body
    ``{"instances": [{"age": 39, "workclass": "State-gov", ...}]}``.
    Outputs as :func:`serving_outputs`.
    """
    if getattr(model, "tft_layer", None) is None:
        model.tft_layer = tf_transform_output.transform_features_layer()
    names = census.RAW_FEATURE_COLUMNS
    specs = [
        tf.TensorSpec(
            [None], tf.int64 if n in census.RAW_NUMERIC_COLUMNS else tf.string, name=n
        )
        for n in names
    ]

    @tf.function(input_signature=specs)
    def predict_raw(*columns):
        raw = {n: tf.expand_dims(c, -1) for n, c in zip(names, columns)}
        transformed = model.tft_layer(raw)
        return serving_outputs(model({k: transformed[k] for k in model.input_names}))

    return predict_raw


def _dataset(file_pattern, fn_args, tf_transform_output, batch_size, input_names, shuffle):
    from model_garden.trainers import inputs

    dataset = inputs.input_fn(
        file_pattern, fn_args.data_accessor, tf_transform_output, batch_size,
        census.LABEL_KEY, shuffle=shuffle,
    )
    return dataset.map(lambda f, y: ({k: f[k] for k in input_names}, y))


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: trains the census model, exports SavedModel.

    ``fn_args.custom_config``: the fields of
    :class:`~model_garden.trainers.configs.WideDeepConfig` (``model_type``,
    ``batch_size``, ``learning_rate``, ``dnn_learning_rate``,
    ``loss_reduction``, ``strategy``, ``steps_per_epoch``).
    TensorBoard logs go to ``fn_args.model_run_dir``. Signatures:
    ``serving_default`` (serialized raw tf.Examples, ``examples`` ``[N]``
    string) and ``predict_raw`` (the 14 raw columns), outputs
    :func:`serving_outputs`.
    """
    import tensorflow_transform as tft

    from model_garden.trainers import export, steps, strategies, warm_start

    config = configs.from_custom_config(configs.WideDeepConfig, fn_args.custom_config)
    kind, batch_size = config.model_type, config.batch_size
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    vocab_sizes = {
        n: census.vocab_size(n, tf_transform_output) for n in census.VOCAB_FEATURES
    }
    strategy = strategies.get_strategy(config.strategy)
    with strategy.scope():
        model = build_model(
            kind,
            vocab_sizes=vocab_sizes,
            learning_rate=config.learning_rate,
            dnn_learning_rate=config.dnn_learning_rate,
            loss_reduction=config.loss_reduction,
        )
        warm_start.warm_start(model, fn_args.base_model)
    train, evaluation = (
        _dataset(
            files, fn_args, tf_transform_output, batch_size, model.input_names, shuffle
        )
        for files, shuffle in ((fn_args.train_files, True), (fn_args.eval_files, False))
    )
    steps.fit(model, train, evaluation, fn_args, config)
    serve_examples = export.make_serve_tf_examples_fn(
        model, tf_transform_output, census.RAW_LABEL_KEY, serving_outputs
    )
    signatures = {
        "serving_default": serve_examples,
        "predict_raw": make_predict_raw_fn(model, tf_transform_output),
    }
    export.save(model, fn_args.serving_model_dir, signatures)
