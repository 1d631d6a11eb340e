"""census preprocessing_fn, wide/deep/wide_deep models and run_fn on real rows.

Transform runs as TFX's Transform does (tft_beam AnalyzeAndTransformDataset
on real adult.data rows, TransformDataset on real adult.test rows, both
materialized as gzipped tf.Example TFRecords); expectations come from the
rows themselves and from the official implementation (TF feature columns,
the canned estimators' default learning rates).
"""

import math
import os
import types

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format
from tensorflow.python.feature_column import feature_column_v2 as fc
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

import model_garden.schemas
from model_garden.components import census_example_gen
from model_garden.datasets import census_csv
from model_garden.schemas import census
from model_garden.trainers import wide_deep

N_TRAIN, N_TEST = 400, 200


@pytest.fixture(scope="module")
def census_dir(data_root) -> str:
    """The byte-exact UCI Adult files (shared/data/census)."""
    return os.path.join(data_root, "census")


def _schema():
    path = os.path.join(os.path.dirname(model_garden.schemas.__file__), "census.pbtxt")
    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _instances(rows):
    return [{k: [v] for k, v in r.items()} for r in rows]


def _analyze_and_transform(root, schema, train, test):
    """Transform's work: transform graph + materialized train/test splits."""
    metadata = dataset_metadata.DatasetMetadata(schema)
    with beam.Pipeline(options=PipelineOptions([])) as p:
        with tft_beam.Context(temp_dir=os.path.join(root, "tmp")):
            (xf_train, xf_metadata), transform_fn = (
                p | "Train" >> beam.Create(train), metadata
            ) | tft_beam.AnalyzeAndTransformDataset(census.preprocessing_fn)
            xf_test, _ = (
                (p | "Test" >> beam.Create(test), metadata),
                transform_fn,
            ) | tft_beam.TransformDataset()
            coder = tft.coders.ExampleProtoCoder(xf_metadata.dataset_metadata.schema)
            for name, pcoll in (("train", xf_train), ("test", xf_test)):
                _ = (
                    pcoll
                    | f"Encode{name}" >> beam.Map(coder.encode)
                    | f"Write{name}" >> beam.io.WriteToTFRecord(
                        os.path.join(root, "examples", f"Split-{name}", "data"),
                        file_name_suffix=".gz",
                    )
                )
            _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(root, "transform_graph"))
    metadata_io.write_metadata(metadata, os.path.join(root, "transform_graph", "metadata"))
    return tft.TFTransformOutput(os.path.join(root, "transform_graph"))


@pytest.fixture(scope="module")
def data(census_dir, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("census"))
    train = census_csv.read_file(os.path.join(census_dir, "adult.data")).rows[:N_TRAIN]
    test = census_csv.read_file(os.path.join(census_dir, "adult.test")).rows[:N_TEST]
    output = _analyze_and_transform(root, _schema(), _instances(train), _instances(test))
    return types.SimpleNamespace(root=root, train=train, test=test, tft_output=output)


def _materialized(data, split):
    files = tf.io.gfile.glob(os.path.join(data.root, "examples", f"Split-{split}", "*.gz"))
    spec = data.tft_output.transformed_feature_spec()
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1000)
    return {k: v.numpy() for k, v in next(iter(dataset.map(lambda s: tf.io.parse_example(s, spec)))).items()}


def _raw_batch(rows, with_label=False):
    names = census_csv.COLUMNS if with_label else census_csv.FEATURE_COLUMNS
    return {
        n: tf.constant(
            [[r[n]] for r in rows], tf.int64 if n in census_csv.NUMERIC_COLUMNS else tf.string
        )
        for n in names
    }


def _expected_keys():
    keys = {census.numeric_key(n) for n in census.NUMERIC_FEATURES}
    keys |= {census.vocab_key(n) for n in census.VOCAB_FEATURES}
    return keys | {
        census.OCCUPATION_KEY,
        census.AGE_BUCKET_KEY,
        census.EDUCATION_X_OCCUPATION_KEY,
        census.AGE_X_EDUCATION_X_OCCUPATION_KEY,
        census.LABEL_KEY,
    }


def test_transformed_keys_shapes_dtypes(data):
    spec = data.tft_output.transformed_feature_spec()
    assert set(spec) == _expected_keys()
    for key, feature in spec.items():
        assert isinstance(feature, tf.io.FixedLenFeature) and feature.shape == [1], key
        assert feature.dtype == (tf.float32 if key.endswith("_z") else tf.int64), key


def test_materialized_examples_ranges(data):
    for split, rows in (("train", data.train), ("test", data.test)):
        xf = _materialized(data, split)
        assert all(v.shape == (len(rows), 1) for v in xf.values())
        for name in census.VOCAB_FEATURES:
            ids = xf[census.vocab_key(name)]
            assert ids.min() >= 0 and ids.max() < census.vocab_size(name, data.tft_output)
        for key, size in wide_deep.wide_sizes().items():
            if key not in {census.vocab_key(n) for n in census.VOCAB_FEATURES}:
                assert xf[key].min() >= 0 and xf[key].max() < size, key
        assert xf[census.LABEL_KEY].sum() == sum(r["income_bracket"] == ">50K" for r in rows)
        assert set(np.unique(xf[census.LABEL_KEY])) <= {0, 1}


def test_transform_equals_official_feature_columns(data):
    """Hash, bucket and crosses are the official feature columns' ids."""
    raw = _raw_batch(data.test, with_label=True)
    xf = {k: v.numpy() for k, v in data.tft_output.transform_raw_features(raw).items()}
    age = tf.feature_column.numeric_column("age")
    age_buckets = tf.feature_column.bucketized_column(age, boundaries=list(census.AGE_BOUNDARIES))
    official = {
        census.OCCUPATION_KEY: tf.feature_column.categorical_column_with_hash_bucket(
            "occupation", hash_bucket_size=1000
        ),
        census.AGE_BUCKET_KEY: age_buckets,
        census.EDUCATION_X_OCCUPATION_KEY: tf.feature_column.crossed_column(
            ["education", "occupation"], hash_bucket_size=1000
        ),
        census.AGE_X_EDUCATION_X_OCCUPATION_KEY: tf.feature_column.crossed_column(
            [age_buckets, "education", "occupation"], hash_bucket_size=1000
        ),
    }
    cache = fc.FeatureTransformationCache(dict(raw))
    for key, column in official.items():
        ids = tf.sparse.to_dense(column.get_sparse_tensors(cache, None).id_tensor).numpy()
        np.testing.assert_array_equal(xf[key], ids, err_msg=key)
    labels = np.array([[r["income_bracket"] == ">50K"] for r in data.test])
    np.testing.assert_array_equal(xf[census.LABEL_KEY], labels)


def test_vocabularies_and_z_scores_from_train_rows(data):
    raw = _raw_batch(data.test)
    xf = {k: v.numpy() for k, v in data.tft_output.transform_raw_features(raw).items()}
    for name in census.VOCAB_FEATURES:
        vocab = [v.decode() for v in data.tft_output.vocabulary_by_name(name)]
        assert set(vocab) == {r[name] for r in data.train}
        for row, [i] in zip(data.test, xf[census.vocab_key(name)]):
            assert (vocab[i] if i < len(vocab) else "<OOV>") == (
                row[name] if row[name] in vocab else "<OOV>"
            )
    assert b"?" in data.tft_output.vocabulary_by_name("workclass")
    for name in census.NUMERIC_FEATURES:
        train = np.array([r[name] for r in data.train], np.float64)
        expected = (np.array([[r[name]] for r in data.test]) - train.mean()) / train.std()
        np.testing.assert_allclose(xf[census.numeric_key(name)], expected, rtol=1e-4, atol=1e-4)


def test_optional_features_missing_values(tmp_path, census_dir):
    """With a schema that makes workclass/age optional (SparseTensor), a
    missing workclass becomes "?" and a missing age the train mean."""
    schema = _schema()
    for feature in schema.feature:
        if feature.name in ("workclass", "age"):
            feature.ClearField("shape")
            feature.presence.min_fraction = 0.0
    rows = census_csv.read_file(os.path.join(census_dir, "adult.data")).rows[:60]
    instances = _instances(rows)
    instances[5]["workclass"] = []
    instances[7]["age"] = []
    output = _analyze_and_transform(str(tmp_path), schema, instances, instances)
    xf = _materialized(types.SimpleNamespace(root=str(tmp_path), tft_output=output), "train")
    vocab = output.vocabulary_by_name("workclass")
    known = np.array([r["age"] for i, r in enumerate(rows) if i != 7], np.float64)
    # Row order is not kept by Beam: find the rows by their values.
    assert (xf["workclass_id"] == vocab.index(b"?")).sum() == sum(
        r["workclass"] == "?" for i, r in enumerate(rows) if i != 5
    ) + 1
    ages = xf["age_z"] * known.std() + known.mean()
    assert np.isclose(ages, known.mean(), atol=1e-3).sum() >= 1


@pytest.mark.parametrize("kind", wide_deep.KINDS)
def test_model_trains_one_step_on_transformed_rows(data, kind):
    vocab_sizes = {n: census.vocab_size(n, data.tft_output) for n in census.VOCAB_FEATURES}
    model = wide_deep.build_model(kind, vocab_sizes=vocab_sizes)
    xf = _materialized(data, "train")
    features = {k: xf[k][:40] for k in model.input_names}
    parts = [model.get_layer(p) for p in ("wide", "deep") if p in kind.split("_")]
    before = [[w.numpy().copy() for w in part.trainable_weights] for part in parts]
    logs = model.train_on_batch(features, xf[census.LABEL_KEY][:40], return_dict=True)
    assert math.isfinite(logs["loss"])
    for part, weights in zip(parts, before):
        changed = [not np.array_equal(a, w.numpy()) for a, w in zip(weights, part.trainable_weights)]
        assert any(changed), part.name
    assert int(model.optimizer.iterations) == 1
    if kind == "wide_deep":
        assert int(model.dnn_optimizer.iterations) == 1
    probabilities = model.predict(features, verbose=0)
    assert probabilities.shape == (40, 1) and ((probabilities > 0) & (probabilities < 1)).all()


def _estimator_constants(module):
    """Module-level float constants of tensorflow_estimator canned/<module>.py,
    read from the installed source (it no longer imports under TF 2.16)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("tensorflow_estimator")
    path = os.path.join(spec.submodule_search_locations[0], "python", "estimator", "canned", f"{module}.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, float)
    }


def test_parameter_structure():
    sizes = wide_deep.wide_sizes()
    for kind in wide_deep.KINDS:
        model = wide_deep.build_model(kind)
        names = {layer.name for layer in model.layers}
        assert ("wide" in names) == (kind in ("wide", "wide_deep"))
        assert ("deep" in names) == (kind in ("deep", "wide_deep"))
        if "deep" in names:
            deep = model.get_layer("deep")
            dense = [l for l in deep.layers if isinstance(l, tf.keras.layers.Dense)]
            assert [l.units for l in dense] == [100, 75, 50, 25, 1]
            assert all(l.activation is tf.keras.activations.relu for l in dense[:-1])
            assert deep.get_layer("occupation_embedding").embeddings.shape == (1000, 8)
            # 5 numerics + indicators (official list sizes + OOV) + embedding.
            width = 5 + sum(census.vocab_size(n) for n in census.VOCAB_FEATURES) + 8
            assert dense[0].kernel.shape == (width, 100)
        if "wide" in names:
            kernel = model.get_layer("wide").get_layer("wide_logits").kernel
            assert kernel.shape == (sum(sizes.values()), 1)
            assert not kernel.numpy().any()  # LinearClassifier starts at zero
    # The canned estimators' default optimizers and learning rates: linear.py
    # Ftrl at min(_LEARNING_RATE, 1/sqrt(#columns)); dnn.py Adagrad at
    # _LEARNING_RATE; dnn_linear_combined.py Ftrl at min(_LINEAR_LEARNING_RATE,
    # 1/sqrt(#columns)) and Adagrad at _DNN_LEARNING_RATE.
    n_wide = len(wide_deep.WIDE_KEYS)
    assert n_wide == 8  # census_dataset: 6 base columns + 2 crosses
    linear, dnn = _estimator_constants("linear"), _estimator_constants("dnn")
    combined = _estimator_constants("dnn_linear_combined")
    wide = wide_deep.build_model("wide").optimizer
    assert isinstance(wide, tf.keras.optimizers.Ftrl)
    assert np.isclose(float(wide.learning_rate), min(linear["_LEARNING_RATE"], 1 / math.sqrt(n_wide)))
    deep = wide_deep.build_model("deep").optimizer
    assert isinstance(deep, tf.keras.optimizers.Adagrad)
    assert np.isclose(float(deep.learning_rate), dnn["_LEARNING_RATE"])
    both = wide_deep.build_model("wide_deep")
    assert isinstance(both.optimizer, tf.keras.optimizers.Ftrl)
    assert isinstance(both.dnn_optimizer, tf.keras.optimizers.Adagrad)
    assert np.isclose(
        float(both.optimizer.learning_rate),
        min(combined["_LINEAR_LEARNING_RATE"], 1 / math.sqrt(n_wide)),
    )
    assert np.isclose(float(both.dnn_optimizer.learning_rate), combined["_DNN_LEARNING_RATE"])


@pytest.fixture(scope="module")
def trained(data):
    """run_fn (wide_deep) on the transformed real rows: a SavedModel."""
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(data.root, "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "test"])
    out = os.path.join(data.root, "trainer")
    args = fn_args_utils.FnArgs(
        train_files=[os.path.join(examples.uri, "Split-train", "*")],
        eval_files=[os.path.join(examples.uri, "Split-test", "*")],
        train_steps=30,
        eval_steps=5,
        transform_graph_path=os.path.join(data.root, "transform_graph"),
        data_accessor=fn_args_utils.DataAccessor(
            tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
            record_batch_factory=tfxio_utils.get_record_batch_factory_from_artifact([examples], []),
            data_view_decode_fn=None,
        ),
        serving_model_dir=os.path.join(out, "serving"),
        model_run_dir=os.path.join(out, "logs"),
        custom_config={"model_type": "wide_deep", "batch_size": 40, "strategy": "auto"},
    )
    wide_deep.run_fn(args)
    return args


def _serialized(rows):
    return tf.constant([census_example_gen.row_to_example(r).SerializeToString() for r in rows])


def test_run_fn_exports_both_signatures(data, trained):
    assert tf.io.gfile.glob(os.path.join(trained.model_run_dir, "train", "events.out.*"))
    loaded = tf.saved_model.load(trained.serving_model_dir)
    assert {"serving_default", "predict_raw"} <= set(loaded.signatures)
    by_examples = loaded.signatures["serving_default"](examples=_serialized(data.test))
    raw = {k: tf.squeeze(v, 1) for k, v in _raw_batch(data.test).items()}
    by_columns = loaded.signatures["predict_raw"](**raw)
    for outputs in (by_examples, by_columns):
        probabilities = outputs["probabilities"].numpy()
        assert probabilities.shape == (N_TEST, 1) and probabilities.dtype == np.float32
        assert ((probabilities > 0) & (probabilities < 1)).all()
        np.testing.assert_array_equal(outputs["class_ids"].numpy(), probabilities >= 0.5)
        classes = outputs["classes"].numpy().astype(str)
        np.testing.assert_array_equal(classes == ">50K", probabilities >= 0.5)
        assert outputs["all_classes"].numpy().astype(str).tolist() == [
            list(census_csv.LABEL_CLASSES)
        ] * N_TEST
    np.testing.assert_allclose(
        by_examples["probabilities"].numpy(), by_columns["probabilities"].numpy(), rtol=1e-6
    )


def test_evaluator_maps_string_label(data, trained, tmp_path):
    """TFMA with label_key income_bracket (raw string) and the model's
    all_classes output: BinaryAccuracy equals the accuracy computed here."""
    import tensorflow_model_analysis as tfma

    records = str(tmp_path / "test.tfrecord")
    with tf.io.TFRecordWriter(records) as writer:
        for s in _serialized(data.test).numpy():
            writer.write(s)
    eval_config = tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(label_key="income_bracket", prediction_key="probabilities")
        ],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name=name)
                    for name in ("BinaryAccuracy", "ExampleCount")
                ]
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
    )
    result = tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(
            eval_saved_model_path=trained.serving_model_dir, eval_config=eval_config
        ),
        eval_config=eval_config,
        data_location=records,
        output_path=str(tmp_path / "tfma"),
        pipeline_options=PipelineOptions([]),
    )
    [(_, metrics)] = result.slicing_metrics
    values = {k: v["doubleValue"] for k, v in metrics[""][""].items()}
    loaded = tf.saved_model.load(trained.serving_model_dir)
    probabilities = loaded.signatures["serving_default"](examples=_serialized(data.test))[
        "probabilities"
    ].numpy()[:, 0]
    labels = np.array([r["income_bracket"] == ">50K" for r in data.test])
    assert values["example_count"] == N_TEST
    assert values["binary_accuracy"] == pytest.approx(np.mean((probabilities >= 0.5) == labels))


def _first_step_on_a_rare_cross(data, kind, loss_reduction):
    """One training step of ``kind`` on the first 40 real rows; what the
    optimizers did to the weight of an ``age x education x occupation``
    bucket that exactly one of the 40 rows has, and to the deep logit's bias.

    Returns ``(p, y, rows, wide_after, deep_bias_delta, model)``: the
    probabilities before the step, the labels, the rows having the bucket,
    that wide weight after the step, and the change of ``deep_logits``' bias
    (``None`` for ``wide``).
    """
    vocab_sizes = {n: census.vocab_size(n, data.tft_output) for n in census.VOCAB_FEATURES}
    model = wide_deep.build_model(kind, vocab_sizes=vocab_sizes, loss_reduction=loss_reduction)
    xf = _materialized(data, "train")
    features = {k: xf[k][:40] for k in model.input_names}
    y = xf[census.LABEL_KEY][:40, 0].astype(np.float64)
    key = census.AGE_X_EDUCATION_X_OCCUPATION_KEY
    ids, counts = np.unique(features[key][:, 0], return_counts=True)
    rare = int(ids[counts == 1][0])
    rows = features[key][:, 0] == rare
    sizes = wide_deep.wide_sizes(vocab_sizes)
    index = sum(sizes[k] for k in wide_deep.WIDE_KEYS[: wide_deep.WIDE_KEYS.index(key)]) + rare
    p = model.predict(features, verbose=0)[:, 0].astype(np.float64)
    deep_bias = (model.get_layer("deep").get_layer("deep_logits").bias
                 if "deep" in kind.split("_") else None)
    before = None if deep_bias is None else deep_bias.numpy()[0]
    model.train_on_batch(features, xf[census.LABEL_KEY][:40])
    wide_after = model.get_layer("wide").get_layer("wide_logits").kernel.numpy()[index, 0]
    delta = None if deep_bias is None else deep_bias.numpy()[0] - before
    return p, y, rows, wide_after, delta, model


@pytest.mark.parametrize("loss_reduction,divisor", [("sum", 1), ("sum_over_batch_size", 40)])
@pytest.mark.parametrize("kind", ["wide", "wide_deep"])
def test_optimizers_see_the_reduced_loss_gradient(data, kind, loss_reduction, divisor):
    """FTRL's first step on a rare wide weight and Adagrad's on the deep
    logit's bias, in closed form, from the gradient of the SUMMED loss (the TF1
    estimators' ``loss_reduction=SUM``) or of the batch mean (40x smaller).

    FTRL (lr_power -0.5, initial accumulator 0.1, no l1/l2) from w = 0:
    w' = -lr g / sqrt(0.1 + g^2); Adagrad: b' - b = -lr g / sqrt(0.1 + g^2);
    g = sum over the batch of (p - y) x / divisor for sigmoid cross-entropy.
    """
    p, y, rows, wide_after, deep_delta, model = _first_step_on_a_rare_cross(
        data, kind, loss_reduction)
    g = float(np.sum(p[rows] - y[rows])) / divisor
    lr = float(model.optimizer.learning_rate)
    expected = -lr * g / math.sqrt(0.1 + g * g)
    assert wide_after == pytest.approx(expected, rel=1e-4)
    if kind == "wide_deep":
        g_bias = float(np.sum(p - y)) / divisor
        dnn_lr = float(model.dnn_optimizer.learning_rate)
        assert deep_delta == pytest.approx(-dnn_lr * g_bias / math.sqrt(0.1 + g_bias**2), rel=1e-3)


def test_summed_loss_steps_are_larger_on_rare_features(data):
    """What the loss reduction changes: with one row of 40 having the bucket,
    FTRL's first step under the summed loss is ~20x the batch mean's (the
    initial accumulator 0.1 dominates a 1/40-sized gradient)."""
    steps = {r: abs(_first_step_on_a_rare_cross(data, "wide", r)[3])
             for r in ("sum", "sum_over_batch_size")}
    assert steps["sum"] > 15 * steps["sum_over_batch_size"] > 0


def test_loss_reduction_defaults():
    """The official (TF 1.x) estimators sum the loss: the v1 LinearClassifier,
    DNNClassifier and DNNLinearCombinedClassifier default to
    loss_reduction=SUM (read from the installed tensorflow_estimator source).
    The recipes' defaults were chosen on a validation split of adult.data
    (benchmarks/census_loss_reduction.py): the sum for census_wide_deep, the
    mean for census_wide and census_deep; ``--set loss_reduction=...``
    switches."""
    import ast
    import importlib.util

    from model_garden.pipelines import recipes
    from model_garden.trainers import configs

    root = importlib.util.find_spec("tensorflow_estimator").submodule_search_locations[0]
    for module, cls in (("linear", "LinearClassifier"), ("dnn", "DNNClassifier"),
                        ("dnn_linear_combined", "DNNLinearCombinedClassifier")):
        path = os.path.join(root, "python", "estimator", "canned", f"{module}.py")
        with open(path) as f:
            tree = ast.parse(f.read())
        [node] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
        [init] = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
        defaults = dict(zip([a.arg for a in init.args.args][-len(init.args.defaults):],
                            init.args.defaults))
        assert ast.unparse(defaults["loss_reduction"]).endswith("Reduction.SUM"), cls
    expected = {"wide": "sum_over_batch_size", "deep": "sum_over_batch_size", "wide_deep": "sum"}
    for kind in wide_deep.KINDS:
        config = recipes.get_recipe(f"census_{kind}").config
        assert config.loss_reduction is None
        assert wide_deep.build_model(kind).loss.reduction == expected[kind]
        other = "sum" if expected[kind] != "sum" else "sum_over_batch_size"
        assert config.override({"loss_reduction": other}).loss_reduction == other
        assert wide_deep.build_model(kind, loss_reduction=other).loss.reduction == other
        with pytest.raises(configs.ConfigError, match="loss_reduction: 'mean' is not one of"):
            config.override({"loss_reduction": "mean"})
    with pytest.raises(ValueError, match="unknown loss_reduction 'mean'"):
        wide_deep.build_model("wide", loss_reduction="mean")
