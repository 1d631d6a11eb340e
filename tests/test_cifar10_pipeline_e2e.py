"""End to end: `model-garden run cifar10_resnet20` on the real CIFAR-10 subset.

One run of the whole TFX pipeline (BeamDagRunner, DirectRunner in_memory)
on ``$MODEL_GARDEN_DATA/cifar10``: the official split is the real JPEG
folders ``cifar-10-images-jpg/{train,test}/<class>/`` (1,000 images each,
100 per class), labelled in the order of the real ``batches.meta``. Then:

* every component is COMPLETE, the model is blessed and pushed to
  ``<root>/serving/cifar10_resnet20/<version>``;
* the pushed SavedModel's ``classify_images`` signature (encoded image bytes)
  classifies the real test JPEGs, read as file bytes, exactly as its
  ``serving_default`` signature does on the same images as raw tf.Examples,
  and both reproduce the Evaluator's top-1 and top-5 accuracy (TFMA), which
  was measured on the same 1,000 test images through the ExampleGen.
"""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from model_garden.pipelines import report

pytestmark = pytest.mark.slow

RECIPE = "cifar10_resnet20"
JPG = "cifar-10-images-jpg"
ARGS = [
    # A smoke-sized run: 20 steps at batch 128 (2,560 images, under 3 epochs
    # of the 1,000 real training images); 4 evaluation batches in the Trainer.
    "--train-steps", "20", "--eval-steps", "4",
    # The recipe's threshold is the paper's accuracy less one point (0.9025
    # for ResNet-20), which 20 steps cannot reach. The test set is balanced
    # (100 images per class), so chance level, and the accuracy of any
    # constant prediction, is 0.10; a bound well below it still lets the
    # Evaluator bless the model, so the blessing and push path is exercised.
    "--threshold", "0.05",
    # At the recipe's learning rate (0.1), 20 steps move the weights far from
    # the batch-norm moving statistics (momentum 0.997: after 20 steps they are
    # still ~94% their initial values), and in inference mode the network
    # saturates: every test image gets the same one-hot probabilities
    # (measured), so two serving paths would agree whatever they fed the
    # model. A 10x smaller rate keeps the probabilities image-dependent, so
    # the signature consistency checks below are real (asserted).
    "--set", "base_learning_rate=0.01",
    # in_memory: on the 2-core CI machine Beam's multi_processing mode spends
    # about 3 minutes starting worker processes; the pipeline is the same.
    "--direct-running-mode", "in_memory",
]
COMPONENTS = {
    "ExampleGen", "StatisticsGen", "CuratedSchema", "InferredSchema", "ExampleValidator",
    "AnomaliesGate", "Transform", "Trainer", "LatestBlessedModel", "Evaluator", "Pusher",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_root):
    """One fresh pipeline run: ``(output root, stdout)``."""
    root = tmp_path_factory.mktemp("cifar10-e2e")
    cmd = [sys.executable, "-m", "model_garden.cli", "run", RECIPE,
           "--output-root", str(root), *ARGS]
    env = {**os.environ, "MODEL_GARDEN_DATA": data_root}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return str(root), proc.stdout


def _serving(root):
    return os.path.join(root, "serving", RECIPE)


@pytest.fixture(scope="module")
def test_images(data_root):
    """The real test split: (file bytes [1000], int64 labels [1000], label names).

    Labels are the index of each file's class folder in the real
    ``batches.meta``, which is how the ExampleGen labels them.
    """
    from model_garden.datasets import cifar10

    base = os.path.join(data_root, "cifar10")
    names = cifar10.load_label_names(os.path.join(base, cifar10.PY_DIR, cifar10.PY_META))
    paths = sorted(glob.glob(os.path.join(base, JPG, "test", "*", "*.jpg")))
    encoded = []
    for path in paths:
        with open(path, "rb") as f:
            encoded.append(f.read())
    labels = np.array([names.index(os.path.basename(os.path.dirname(p))) for p in paths],
                      np.int64)
    return encoded, labels, names


@pytest.fixture(scope="module")
def pushed_model(run):
    import tensorflow as tf

    root, _ = run
    [version] = os.listdir(_serving(root))
    return tf.saved_model.load(os.path.join(_serving(root), version))


def test_every_component_completes_and_the_model_is_pushed(run, data_root):
    root, stdout = run
    runs = {r.node_id: r for r in report.component_runs(os.path.join(root, RECIPE,
                                                                      "metadata.sqlite"))}
    assert set(runs) == COMPONENTS
    assert {r.state for r in runs.values()} == {"COMPLETE"}
    assert runs["ExampleValidator"].blessed is True  # the real JPEGs match the curated schema
    assert runs["Evaluator"].blessed is True
    assert runs["Pusher"].blessed is True
    versions = os.listdir(_serving(root))
    assert len(versions) == 1 and versions[0].isdigit()
    assert "pushed: " + os.path.join(_serving(root), versions[0]) in stdout
    # The ExampleGen labelled the official split (the JPEG folders) in the
    # order of the real batches.meta (its label_names.txt: line i = label i).
    from model_garden.datasets import cifar10

    [examples] = glob.glob(os.path.join(root, RECIPE, "pipeline", "ExampleGen", "examples", "*"))
    assert sorted(os.listdir(examples)) == ["Split-test", "Split-train", "label_names.txt"]
    with open(os.path.join(examples, "label_names.txt")) as f:
        label_names = f.read().splitlines()
    meta = os.path.join(data_root, "cifar10", cifar10.PY_DIR, cifar10.PY_META)
    assert label_names == cifar10.load_label_names(meta)


def _evaluator_metrics(root):
    """Overall-slice metrics of the Evaluator's TFMA result: name -> value."""
    import tensorflow_model_analysis as tfma

    [uri] = glob.glob(os.path.join(root, RECIPE, "pipeline", "Evaluator", "evaluation", "*"))
    overall = dict(tfma.load_eval_result(uri).slicing_metrics)[()][""][""]
    return {k: v["doubleValue"] for k, v in overall.items() if "doubleValue" in v}


def _top_k_accuracy(probabilities, labels, k):
    """Share of rows whose label is among the k highest probabilities."""
    top = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def test_pushed_signatures_classify_real_test_jpegs_consistently(run, pushed_model,
                                                                 test_images):
    import tensorflow as tf

    from model_garden.components import image_example as ie

    root, _ = run
    encoded, labels, names = test_images
    assert len(encoded) == 1000 and np.bincount(labels).tolist() == [100] * len(names)

    by_bytes = pushed_model.signatures["classify_images"](images=tf.constant(encoded))
    classes, probabilities = by_bytes["classes"], by_bytes["probabilities"]
    assert classes.dtype == tf.int64 and classes.shape == (len(encoded),)
    assert probabilities.dtype == tf.float32 and probabilities.shape == (len(encoded), len(names))
    classes, probabilities = classes.numpy(), probabilities.numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    assert np.all(probabilities >= 0)
    np.testing.assert_array_equal(classes, probabilities.argmax(-1))
    # The probabilities depend on the image (see ARGS), else the comparisons
    # below would hold whatever each signature fed the model.
    spread = probabilities.std(axis=0).max()
    assert spread > 1e-3, (spread, probabilities[:3])
    accuracy = float(np.mean(classes == labels))

    # The same files as the raw tf.Examples a serving client sends (TF-Slim
    # keys, original JPEG bytes, no label) through serving_default.
    serialized = [ie.image_to_tfexample(data, "jpeg", 32, 32, None).SerializeToString()
                  for data in encoded]
    by_example = pushed_model.signatures["serving_default"](examples=tf.constant(serialized))
    assert by_example["classes"].dtype == tf.int64
    assert by_example["probabilities"].shape == (len(encoded), len(names))
    example_classes = by_example["classes"].numpy()
    assert float(np.mean(example_classes == labels)) == accuracy
    np.testing.assert_array_equal(example_classes, classes)
    np.testing.assert_allclose(by_example["probabilities"].numpy(), probabilities,
                               rtol=1e-5, atol=1e-7)

    # The Evaluator measured the same model on the same 1,000 images (the
    # ExampleGen's test split, through serving_default).
    metrics = _evaluator_metrics(root)
    top1 = metrics["sparse_categorical_accuracy"]
    top5 = metrics["sparse_top_k_categorical_accuracy"]
    assert 0.05 <= top1 <= top5 <= 1.0
    assert top1 == pytest.approx(accuracy, abs=1e-6)
    assert top5 == pytest.approx(_top_k_accuracy(probabilities, labels, 5), abs=1e-6)
