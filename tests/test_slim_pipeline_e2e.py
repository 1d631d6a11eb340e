"""End to end: TF-Slim recipes through the real pipeline (BeamDagRunner) on real data.

1. ``flowers_mobilenet_v1_025`` at 128 px (the smallest released MobileNet
   variant) on the 400 real flower photos, a few steps: every component
   completes, blessed at a low threshold, pushed; the pushed model's
   image-bytes signature (``classify_images``) names flower classes for
   real photos.
2. The same recipe fine-tuned from the model the first run pushed
   (``checkpoint_path`` = its serving folder, only ``MobilenetV1/Logits``
   trainable): pushed as a second version whose every weight outside the
   logits, batch norm statistics included, is bit for bit the first's.
3. ``imagenet_resnet_v1_50`` (the official ImageNet ResNet-50 schedule) on
   the 100-image ImageNet sample: converts, trains and evaluates for a few
   steps (top-1 and top-5, sliced by class).
"""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from model_garden.pipelines import report

pytestmark = pytest.mark.slow

FLOWERS = "flowers_mobilenet_v1_025"
COMMON = [
    # Flowers has no official split (Slim's is random): a hash split.
    "--split", "hash:80/20",
    # Far too few steps to learn flowers; a threshold below chance (0.2)
    # still exercises the blessing and the push.
    "--threshold", "0.05",
    # in_memory: Beam's worker processes cost minutes on 2 cores; the
    # pipeline is the same (tests/test_image_example_gen_e2e.py runs them).
    "--direct-running-mode", "in_memory",
]
FLOWER_ARGS = [*COMMON, "--train-steps", "6", "--eval-steps", "2",
               "--set", "image_size=128", "--set", "batch_size=16"]


def _run(root, recipe, *args, data_root):
    cmd = [sys.executable, "-m", "model_garden.cli", "run", recipe, "--output-root", str(root),
           *args]
    env = {**os.environ, "MODEL_GARDEN_DATA": data_root}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


def _versions(root, recipe):
    serving = os.path.join(root, "serving", recipe)
    return sorted(os.listdir(serving), key=int) if os.path.isdir(serving) else []


@pytest.fixture(scope="module")
def flowers_runs(tmp_path_factory, data_root):
    """``(root, first version dir, fine-tuned version dir)``."""
    root = tmp_path_factory.mktemp("slim-e2e")
    _run(root, FLOWERS, *FLOWER_ARGS, data_root=data_root)
    [first] = _versions(root, FLOWERS)
    first_dir = os.path.join(root, "serving", FLOWERS, first)
    _run(root, FLOWERS, *FLOWER_ARGS,
         "--set", f"checkpoint_path={first_dir}",
         "--set", "checkpoint_exclude_scopes=",
         "--set", "trainable_scopes=MobilenetV1/Logits",
         # judged against the first model as the baseline; a few steps may
         # lose a little of its (chance-level) accuracy
         "--change-tolerance", "1.0",
         data_root=data_root)
    versions = _versions(root, FLOWERS)
    assert len(versions) == 2, versions
    return str(root), first_dir, os.path.join(root, "serving", FLOWERS, versions[1])


def _weights(saved_model_dir):
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    return {v.name: v.numpy() for v in loaded.variables
            if v.name.startswith("MobilenetV1/")}


def test_first_run_completes_every_component(flowers_runs):
    root, _, _ = flowers_runs
    runs = report.component_runs(os.path.join(root, FLOWERS, "metadata.sqlite"))
    states = {r.node_id: r.state for r in runs}
    assert {"ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(states)
    assert set(states.values()) <= {"COMPLETE", "CACHED"}


def test_fine_tuning_keeps_every_frozen_weight_of_the_pushed_model(flowers_runs):
    _, first, second = flowers_runs
    before, after = _weights(first), _weights(second)
    assert set(before) == set(after) and len(before) > 50
    changed = sorted(n for n in after if not np.array_equal(after[n], before[n]))
    assert changed == ["MobilenetV1/Logits/Conv2d_1c_1x1/bias:0",
                       "MobilenetV1/Logits/Conv2d_1c_1x1/kernel:0"]


def test_image_bytes_signature_names_flower_classes(flowers_runs, data_root):
    import tensorflow as tf

    _, _, second = flowers_runs
    photos = os.path.join(data_root, "flowers", "flower_photos")
    classes = sorted(d for d in os.listdir(photos) if os.path.isdir(os.path.join(photos, d)))
    paths = [sorted(glob.glob(os.path.join(photos, c, "*.jpg")))[-1] for c in classes]
    encoded = [open(p, "rb").read() for p in paths]
    out = tf.saved_model.load(second).signatures["classify_images"](images=tf.constant(encoded))
    names = out["top_k_names"].numpy().astype(str)
    ids = out["top_k_classes"].numpy()
    probabilities = out["top_k_probabilities"].numpy()
    assert names.shape == ids.shape == probabilities.shape == (5, 5)
    # the names are labels.txt's for the ids, every class once per image, ranked
    assert all(sorted(row) == classes for row in names)
    assert (names == np.array(classes)[ids]).all()
    assert (np.diff(probabilities, axis=1) <= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (out["classes"].numpy() == ids[:, 0]).all()


def test_imagenet_resnet_v1_50_trains_and_evaluates_on_the_sample(tmp_path, data_root):
    import tensorflow as tf

    recipe = "imagenet_resnet_v1_50"
    # 2 steps of 1,001 classes: top-1 is ~0, so a zero threshold (the last
    # --threshold wins) lets the blessing and the push run.
    _run(tmp_path, recipe, *COMMON, "--threshold", "0", "--train-steps", "2",
         "--eval-steps", "1", "--set", "batch_size=4", data_root=data_root)
    runs = {r.node_id: r.state for r in
            report.component_runs(os.path.join(tmp_path, recipe, "metadata.sqlite"))}
    assert runs["Trainer"] == runs["Evaluator"] == "COMPLETE"
    [version] = _versions(tmp_path, recipe)
    model = tf.saved_model.load(os.path.join(tmp_path, "serving", recipe, version))
    with open(sorted(glob.glob(os.path.join(data_root, "imagenet", "**", "*.JPEG"),
                               recursive=True))[0], "rb") as f:
        out = model.signatures["classify_images"](images=tf.constant([f.read()]))
    assert out["probabilities"].shape == (1, 1001)
    # ImageNet's names: label 0 is Slim's background class, then the synsets' words
    assert out["top_k_names"].shape == (1, 5)
    # The Evaluator computed top-1 and top-5, overall and per class.
    evaluations = glob.glob(os.path.join(tmp_path, recipe, "pipeline", "Evaluator", "evaluation", "*"))
    assert evaluations
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluations[0])
    keys = {tuple(s for s in slice_key) for slice_key, _ in result.slicing_metrics}
    assert () in keys and any(k and k[0][0] == "image/class/label" for k in keys)
    overall = dict(result.slicing_metrics)[()][""][""]
    assert {"sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"} <= set(overall)
