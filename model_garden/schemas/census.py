"""Transform ``preprocessing_fn`` for the census (UCI Adult) recipes.

It computes the features of the official wide & deep model,
``official/r1/wide_deep/census_dataset.py`` ``build_model_columns()``, as
materialized tensors, so the Keras model (:mod:`model_garden.trainers.wide_deep`)
needs no feature columns.

Inputs (``census.pbtxt``: every feature has shape [1], so each is a dense
``[batch, 1]`` tensor): int64 ``age``, ``education_num``, ``capital_gain``,
``capital_loss``, ``hours_per_week`` (and ``fnlwgt``, unused as in the
official model); string categoricals; string label ``income_bracket``.

Outputs, all ``[batch, 1]``:

=========================================  =======  ==========================
key                                        dtype    value
=========================================  =======  ==========================
``<numeric>_z`` for :data:`NUMERIC_FEATURES`  float32  z-score (train mean/std)
``<vocab>_id`` for :data:`VOCAB_FEATURES`  int64    ``[0, vocab + 1)``, last =
                                                    OOV bucket
``occupation_hash``                        int64    ``[0, 1000)``
``age_bucket``                             int64    ``[0, 11)``
``education_x_occupation``                 int64    ``[0, 1000)``
``age_bucket_x_education_x_occupation``    int64    ``[0, 1000)``
``label``                                  int64    1 if ``>50K`` else 0
=========================================  =======  ==========================

Hashes and crosses use the very ops of the official feature columns:
``categorical_column_with_hash_bucket`` = ``tf.strings.to_hash_bucket_fast``,
``crossed_column`` = ``tf.sparse.cross_hashed`` (default hash key), with the
bucketized age (``bucketized_column`` boundaries) as an int64 input.

Missing values: ``"?"`` (UCI's unknown) is an ordinary category: it gets its
own vocabulary entry, hash bucket and cross. The curated schema requires every
feature, so inputs are dense; should a schema make a feature optional
(``SparseTensor``), a missing categorical becomes ``"?"`` and a missing
numeric the training mean (z-score 0).
"""

import tensorflow as tf
import tensorflow_transform as tft

#: The 14 raw feature columns of ``census.pbtxt``, in its (and the Adult
#: files') order: the inputs of :func:`preprocessing_fn` and of the
#: trainer's ``predict_raw`` signature. fnlwgt is a raw input, unused here.
RAW_FEATURE_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "gender", "capital_gain", "capital_loss",
    "hours_per_week", "native_country",
)
#: Raw columns of type INT (int64) in ``census.pbtxt``; the others are BYTES.
RAW_NUMERIC_COLUMNS = (
    "age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"
)
RAW_LABEL_KEY = "income_bracket"
#: Transformed label key (``input_fn``'s ``label_key``).
LABEL_KEY = "label"
POSITIVE_CLASS = ">50K"
#: The raw label's classes in class-id order (``label`` 0 and 1), the
#: ``income_bracket`` domain of ``census.pbtxt``.
LABEL_CLASSES = ("<=50K", POSITIVE_CLASS)
MISSING = "?"

#: Continuous columns of the official deep part (``numeric_column``).
NUMERIC_FEATURES = (
    "age", "education_num", "capital_gain", "capital_loss", "hours_per_week"
)
#: ``categorical_column_with_vocabulary_list`` columns, and the size of each
#: official list (``census_dataset.build_model_columns``; ``workclass``
#: includes ``'?'``). The vocabularies are computed from the data; run_fn
#: reads their real sizes from the transform output.
VOCAB_FEATURES = ("education", "marital_status", "relationship", "workclass")
OFFICIAL_VOCAB_SIZES = {
    "education": 16, "marital_status": 7, "relationship": 6, "workclass": 9
}
#: One out-of-vocabulary bucket per vocabulary (the official lists map unknown
#: values to -1, an all-zero indicator; here they get their own id).
NUM_OOV_BUCKETS = 1
#: ``census_dataset._HASH_BUCKET_SIZE``: occupation hash and both crosses.
HASH_BUCKET_SIZE = 1000
#: ``bucketized_column(age, boundaries=[18, 25, ..., 65])``.
AGE_BOUNDARIES = (18, 25, 30, 35, 40, 45, 50, 55, 60, 65)
NUM_AGE_BUCKETS = len(AGE_BOUNDARIES) + 1

OCCUPATION_KEY = "occupation_hash"
AGE_BUCKET_KEY = "age_bucket"
EDUCATION_X_OCCUPATION_KEY = "education_x_occupation"
AGE_X_EDUCATION_X_OCCUPATION_KEY = "age_bucket_x_education_x_occupation"


def numeric_key(name: str) -> str:
    """Transformed key of numeric column ``name`` (z-score)."""
    return f"{name}_z"


def vocab_key(name: str) -> str:
    """Transformed key of vocabulary column ``name`` (integer id)."""
    return f"{name}_id"


def vocab_size(name: str, tf_transform_output=None) -> int:
    """Ids of vocabulary column ``name``: entries + OOV buckets.

    From ``tf_transform_output`` (the vocabulary Transform computed) when
    given, else from :data:`OFFICIAL_VOCAB_SIZES`.
    """
    if tf_transform_output is None:
        return OFFICIAL_VOCAB_SIZES[name] + NUM_OOV_BUCKETS
    return tf_transform_output.vocabulary_size_by_name(name) + NUM_OOV_BUCKETS


def _dense_string(x):
    """``[batch, 1]`` string tensor; a missing value becomes ``"?"``."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), MISSING
        )
    return tf.reshape(x, [-1, 1])


def _dense_float(x):
    """``[batch, 1]`` float32; a missing value becomes the training mean."""
    if isinstance(x, tf.SparseTensor):
        values = tf.cast(x.values, tf.float32)
        mean = tft.mean(values)
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, values, [x.dense_shape[0], 1]), mean
        )
    return tf.reshape(tf.cast(x, tf.float32), [-1, 1])


def preprocessing_fn(inputs):
    """Raw census features -> the official wide & deep features.

    Args:
      inputs: dict of raw ``[batch, 1]`` tensors keyed by the 15 column names
        (``income_bracket`` absent at serving time).

    Returns:
      dict of ``[batch, 1]`` tensors, keys and types in the module docstring.
    """
    outputs = {}
    for name in NUMERIC_FEATURES:
        outputs[numeric_key(name)] = tft.scale_to_z_score(_dense_float(inputs[name]))
    strings = {
        name: _dense_string(inputs[name]) for name in VOCAB_FEATURES + ("occupation",)
    }
    for name in VOCAB_FEATURES:
        outputs[vocab_key(name)] = tft.compute_and_apply_vocabulary(
            strings[name], num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=name
        )
    education, occupation = strings["education"], strings["occupation"]
    outputs[OCCUPATION_KEY] = tf.strings.to_hash_bucket_fast(occupation, HASH_BUCKET_SIZE)
    age_bucket = tft.apply_buckets(
        _dense_float(inputs["age"]), [[float(b) for b in AGE_BOUNDARIES]]
    )
    outputs[AGE_BUCKET_KEY] = age_bucket
    outputs[EDUCATION_X_OCCUPATION_KEY] = _cross([education, occupation])
    outputs[AGE_X_EDUCATION_X_OCCUPATION_KEY] = _cross([age_bucket, education, occupation])
    if RAW_LABEL_KEY in inputs:
        label = _dense_string(inputs[RAW_LABEL_KEY])
        outputs[LABEL_KEY] = tf.cast(tf.equal(label, POSITIVE_CLASS), tf.int64)
    return outputs


def _cross(columns):
    """``crossed_column(columns, 1000)`` of one-value columns -> ``[batch, 1]``."""
    crossed = tf.sparse.cross_hashed(columns, num_buckets=HASH_BUCKET_SIZE)
    return tf.reshape(crossed.values, [-1, 1])
