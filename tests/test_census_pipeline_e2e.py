"""End to end: the three census recipes on the real UCI Adult files, official split.

One module-scoped output root holds one run of `model-garden run` for each of
census_wide, census_deep and census_wide_deep on the full adult.data (train)
and adult.test (test), each recipe with its own metadata.sqlite and pipeline
folder under <root>/<recipe>/ and its pushed model under
<root>/serving/<recipe>/<version>. The three runs are separate pipelines, so
their ExampleGen, StatisticsGen and Transform run once each (three times in
all); nothing is shared between them but the output root. They run one
after the other: on the 2-core machine three concurrent runs took as long
(8.5 min against 7.8 min, both with other jobs on the machine) and 35% more
CPU time.

For each recipe:
1. every component COMPLETE, ExampleValidator finds no anomalies in the real
   data, the Evaluator blesses the model and the Pusher pushes it;
2. the pushed model's `predict_raw` signature (14 raw columns) predicts the
   real adult.test rows exactly as `serving_default` (tf.Examples, the
   Evaluator's input) does, beats the majority class on them, and its
   accuracy is the Evaluator's own overall BinaryAccuracy;
3. the Evaluator's TFMA result holds a slice for every gender and every race
   value of adult.test, and no other.
"""

import collections
import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from model_garden.pipelines import report

pytestmark = pytest.mark.slow

RECIPES = ("census_wide", "census_deep", "census_wide_deep")
# Short training, 2500 steps of batch 40 (about 3 epochs of adult.data; the
# recipes' default is 8141, 10 epochs: see benchmarks/census.py). Steps are
# cheap (a few ms each; the Trainer's time is mostly start-up and export);
# fewer are not enough for census_wide_deep, which trains at the canned
# estimator's small rates (FTRL 0.005, Adagrad 0.001): after 200 steps it
# predicts <=50K for every row, after 1000 it is at ~79% on adult.test.
STEPS = ["--train-steps", "2500", "--eval-steps", "50"]
# 0.80: above the majority-class rate of adult.test (12,435 of 16,281 rows
# are <=50K: 76.4%), so a blessing means the model learned something, yet
# below what 2500 steps reach (~83-85% for each of the three models), so the
# gate is not flaky. The official "over 83%" is for the full training
# (benchmarks/census.py).
THRESHOLD = "0.80"
# in_memory: on the 2-core CI machine Beam's multi_processing mode spends
# about 3 minutes per run starting worker processes (see the README's
# benchmark); the pipeline under test is the same.
COMMON = ["--split", "official", *STEPS, "--threshold", THRESHOLD,
          "--direct-running-mode", "in_memory"]
COMPONENTS = {
    "ExampleGen", "StatisticsGen", "CuratedSchema", "InferredSchema", "ExampleValidator",
    "AnomaliesGate", "Transform", "Trainer", "LatestBlessedModel", "Evaluator", "Pusher",
}


@pytest.fixture(scope="module")
def census_dir(data_root):
    return os.path.join(data_root, "census")


@pytest.fixture(scope="module")
def output_root(tmp_path_factory):
    """Runs the three recipes, one after the other, into one root; returns (root, stdouts)."""
    root = tmp_path_factory.mktemp("census-e2e")
    stdouts = {}
    for recipe in RECIPES:
        cmd = [sys.executable, "-m", "model_garden.cli", "run", recipe,
               "--output-root", str(root), *COMMON]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, (recipe, proc.stdout[-2000:] + proc.stderr[-5000:])
        stdouts[recipe] = proc.stdout
    return root, stdouts


@pytest.fixture(scope="module")
def test_rows(census_dir):
    """The real adult.test rows (16,281), parsed by the ExampleGen's own parser."""
    from model_garden.datasets import census_csv

    rows = census_csv.read_file(os.path.join(census_dir, "adult.test")).rows
    assert len(rows) == 16281
    return rows


def _metadata(root, recipe):
    return os.path.join(root, recipe, "metadata.sqlite")


def _serving(root, recipe):
    return os.path.join(root, "serving", recipe)


def _eval_result(root, recipe):
    import tensorflow_model_analysis as tfma

    [uri] = glob.glob(os.path.join(root, recipe, "pipeline", "Evaluator", "evaluation", "*"))
    return tfma.load_eval_result(uri)


def _overall(result):
    return dict(result.slicing_metrics)[()][""][""]


def _labels(rows):
    from model_garden.datasets import census_csv

    return np.array([census_csv.LABEL_CLASSES.index(r["income_bracket"]) for r in rows])


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_component_succeeds_and_the_model_is_pushed(output_root, recipe):
    root, stdouts = output_root
    runs = {r.node_id: r for r in report.component_runs(_metadata(root, recipe))}
    assert set(runs) == COMPONENTS
    assert {r.state for r in runs.values()} == {"COMPLETE"}, {r.node_id: r.state for r in runs.values()}
    assert runs["ExampleValidator"].blessed is True  # real data matches the curated schema
    assert runs["Evaluator"].blessed is True
    assert runs["Pusher"].blessed is True
    versions = os.listdir(_serving(root, recipe))
    assert len(versions) == 1 and versions[0].isdigit()
    assert "pushed: " + os.path.join(_serving(root, recipe), versions[0]) in stdouts[recipe]
    # Each recipe is its own pipeline: its own ExampleGen wrote both splits.
    for split in ("train", "test"):
        [folder] = glob.glob(os.path.join(root, recipe, "pipeline", "ExampleGen", "examples",
                                          "*", f"Split-{split}"))
        assert os.listdir(folder), split


def _load_pushed(root, recipe):
    import tensorflow as tf

    [version] = os.listdir(_serving(root, recipe))
    return tf.saved_model.load(os.path.join(_serving(root, recipe), version))


def _predict_raw(model, rows):
    import tensorflow as tf

    from model_garden.datasets import census_csv

    columns = {
        name: tf.constant([r[name] for r in rows],
                          tf.int64 if name in census_csv.NUMERIC_COLUMNS else tf.string)
        for name in census_csv.FEATURE_COLUMNS
    }
    return {k: v.numpy() for k, v in model.signatures["predict_raw"](**columns).items()}


@pytest.mark.parametrize("recipe", RECIPES)
def test_predict_raw_agrees_with_serving_default_and_the_evaluator(output_root, test_rows,
                                                                  recipe):
    import tensorflow as tf

    from model_garden.components.census_example_gen import row_to_example

    root, _ = output_root
    model = _load_pushed(root, recipe)
    raw = _predict_raw(model, test_rows)
    # The same rows as the tf.Examples the ExampleGen writes (label included,
    # as in the Evaluator's input; serving_default ignores it).
    serialized = tf.constant([row_to_example(r).SerializeToString() for r in test_rows])
    default = {k: v.numpy() for k, v in model.signatures["serving_default"](
        examples=serialized).items()}
    assert raw["probabilities"].shape == (len(test_rows), 1)
    # One graph (Transform layer + model) on the same batch of the same
    # values: the probabilities are equal to the bit.
    np.testing.assert_array_equal(raw["probabilities"], default["probabilities"])
    np.testing.assert_array_equal(raw["class_ids"], default["class_ids"])
    np.testing.assert_array_equal(raw["classes"], default["classes"])

    labels = _labels(test_rows)
    accuracy = float(np.mean(raw["class_ids"][:, 0] == labels))
    majority = max(np.mean(labels), 1 - np.mean(labels))  # 12,435 / 16,281 = 0.764
    assert accuracy > majority + 0.01, (accuracy, majority)
    # The Evaluator measured the same model on the same 16,281 rows: its
    # BinaryAccuracy (prediction > 0.5) and ours (>= 0.5) may differ only by
    # a row at exactly 0.5.
    measured = _overall(_eval_result(root, recipe))["binary_accuracy"]["doubleValue"]
    assert accuracy == pytest.approx(measured, abs=1.5 / len(test_rows))


@pytest.mark.parametrize("recipe", RECIPES)
def test_evaluator_slices_by_every_gender_and_race_of_adult_test(output_root, test_rows,
                                                                recipe):
    root, _ = output_root
    result = _eval_result(root, recipe)
    slices = collections.defaultdict(dict)
    for key, metrics in result.slicing_metrics:
        if key:
            [(feature, value)] = key
            value = value.decode() if isinstance(value, bytes) else value
            slices[feature][value] = metrics[""][""]
    assert set(slices) == {"gender", "race"}
    labels = _labels(test_rows)
    for feature in ("gender", "race"):
        values = np.array([r[feature] for r in test_rows])
        assert set(slices[feature]) == set(values), feature
        for value, metrics in slices[feature].items():
            assert {"binary_accuracy", "auc", "precision", "recall"} <= set(metrics)
            # AUC is 0..1 on every slice with both classes (each has, in adult.test)
            assert 0.0 <= metrics["auc"]["doubleValue"] <= 1.0
            assert len(set(labels[values == value])) == 2
    # The slices partition the rows: their accuracies, weighted by slice size,
    # give back the overall accuracy.
    overall = _overall(result)["binary_accuracy"]["doubleValue"]
    for feature in ("gender", "race"):
        values = np.array([r[feature] for r in test_rows])
        weighted = sum(m["binary_accuracy"]["doubleValue"] * np.sum(values == v)
                       for v, m in slices[feature].items()) / len(test_rows)
        assert weighted == pytest.approx(overall, abs=1e-9), feature
