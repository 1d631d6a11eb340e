"""The image classifier on the CIFAR ResNet: the network against the paper
(``model_garden.nets.resnet_cifar``), the ``cifar`` preprocessing, training on
real images, the TFX Trainer run of ``model_garden.trainers.image_classifier``
(killed and resumed, exactly ``train_steps``), and the exported signatures.

Data: the real CIFAR-10 JPEGs in ``shared/data/cifar10`` (a few per class,
copied into a temporary image folder), through the real ExampleGen
executor and the real TFX Transform executor (``materialize=False``).
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from model_garden.components import image_example as ie

JPG = "cifar-10-images-jpg"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# He et al. 2015 (arXiv:1512.03385) Table 6: depth -> parameters (millions)
# as printed, and half a unit of the last printed digit.
PAPER_PARAMS = {20: (0.27, 0.005), 32: (0.46, 0.005), 44: (0.66, 0.005),
                56: (0.85, 0.005), 110: (1.7, 0.05)}

# Small run of the real Trainer: 16 training examples per "epoch" at batch 8
# (2 steps per epoch), 8 steps = 4 epochs; killed at the start of epoch 2.
RUN_CONFIG = {"net": "resnet_v1_20_cifar", "num_classes": 10, "batch_size": 8,
              "train_examples": 16, "steps_per_epoch": 2, "strategy": "auto",
              "mixed_precision": "float32", "epochs_between_evals": 2}
TRAIN_STEPS, EVAL_STEPS, STEPS_PER_EPOCH, KILL_AT_EPOCH = 8, 1, 2, 2


def _count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("depth", sorted(PAPER_PARAMS))
def test_v1_parameter_counts_match_the_paper(depth):
    from model_garden.nets import resnet_cifar

    paper, tolerance = PAPER_PARAMS[depth]
    count = _count(resnet_cifar.resnet_cifar(depth, version=1))
    assert abs(count / 1e6 - paper) < tolerance, count


@pytest.mark.parametrize("depth", [20, 110])
def test_v2_builds_with_the_same_parameters(depth):
    from model_garden.nets import resnet_cifar

    v1 = resnet_cifar.resnet_cifar(depth, version=1)
    v2 = resnet_cifar.resnet_cifar(depth, version=2)
    assert v2.name == f"resnet{depth}_v2"
    assert v2.output_shape == (None, 10)
    # Pre-activation moves BN (one before every conv but the first, one at
    # the end) without changing the number of BN layers or convolutions.
    assert _count(v2) == _count(v1)
    # official/resnet projection shortcuts: 1x1 convs 16->16, 16->32, 32->64
    # (+ their BN gamma/beta in v1).
    convs = 16 * 16 + 16 * 32 + 32 * 64
    proj1 = resnet_cifar.resnet_cifar(depth, 1, shortcut="projection")
    proj2 = resnet_cifar.resnet_cifar(depth, 2, shortcut="projection")
    assert _count(proj1) - _count(v1) == convs + 2 * (16 + 32 + 64)
    assert _count(proj2) - _count(v2) == convs


def test_bad_depth_is_refused():
    from model_garden.nets import resnet_cifar

    with pytest.raises(ValueError, match="6n\\+2"):
        resnet_cifar.resnet_cifar(21)


def _real_images(data_root, split, per_class):
    import tensorflow as tf

    from model_garden.datasets import cifar10

    root = os.path.join(data_root, "cifar10")
    names = cifar10.load_label_names(os.path.join(root, "cifar-10-batches-py", "batches.meta"))
    images, labels = [], []
    for label, name in enumerate(names):
        for path in sorted(glob.glob(os.path.join(root, JPG, split, name, "*.jpg")))[:per_class]:
            images.append(tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy())
            labels.append(label)
    return np.stack(images).astype(np.int64), np.array(labels, np.int64)


def test_augment_pads_crops_flips(data_root):
    import tensorflow as tf

    from model_garden.preprocessing import cifar

    images, labels = _real_images(data_root, "train", 1)
    image, label = images[3], labels[3]
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
    changed = 0
    for s in range(16):
        out, out_label = cifar.augment(
            tf.constant(image), tf.constant(label), seed=tf.constant([s, 7])
        )
        out = out.numpy()
        assert out.shape == (32, 32, 3) and out.dtype == image.dtype
        assert out_label.numpy() == label
        # The output is a 32x32 window of the zero-padded image, maybe mirrored.
        windows = [
            w for dy in range(9) for dx in range(9)
            for w in (padded[dy:dy + 32, dx:dx + 32], padded[dy:dy + 32, dx:dx + 32][:, ::-1])
        ]
        assert any(np.array_equal(out, w) for w in windows)
        changed += not np.array_equal(out, image)
    assert changed > 0


def test_learning_rate_schedule_is_official():
    from model_garden.trainers import image_classifier

    # official/resnet cifar10_main.py: 50,000 images, batch_denom 128,
    # boundary epochs [91, 136, 182], decay rates [1, 0.1, 0.01, 0.001].
    schedule = image_classifier.learning_rate_schedule(256, 50000)
    per_epoch = 50000 / 256
    assert schedule.boundaries == [int(per_epoch * e) for e in (91, 136, 182)]
    np.testing.assert_allclose(schedule.values, [0.2, 0.02, 0.002, 0.0002])
    assert float(schedule(int(per_epoch * 91))) == pytest.approx(0.2)
    assert float(schedule(int(per_epoch * 91) + 1)) == pytest.approx(0.02)


def test_one_train_step_on_real_images(data_root):
    from model_garden.nets import resnet_cifar
    from model_garden.trainers import image_classifier

    images, labels = _real_images(data_root, "train", 1)  # one per class
    model = resnet_cifar.resnet_cifar(20, version=2)
    image_classifier.compile_model(model, image_classifier.learning_rate_schedule(10, 10))
    before = [w.copy() for w in model.get_weights()]
    loss, top1, top5 = model.train_on_batch(images, labels)
    assert np.isfinite(loss) and 0 <= top1 <= top5 <= 1
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert int(model.optimizer.iterations.numpy()) == 1


def test_epoch_checkpoint_restores_weights_and_momentum(tmp_path, data_root):
    from model_garden.nets import resnet_cifar
    from model_garden.trainers import checkpoints, image_classifier

    images, labels = _real_images(data_root, "train", 1)

    def compiled():
        model = resnet_cifar.resnet_cifar(20)
        image_classifier.compile_model(model, image_classifier.learning_rate_schedule(10, 10))
        model.optimizer.build(model.trainable_variables)
        return model

    trained = compiled()
    trained.train_on_batch(images, labels)
    checkpoints.EpochCheckpoint(str(tmp_path), trained).on_epoch_end(0)
    fresh = compiled()
    assert checkpoints.EpochCheckpoint(str(tmp_path), fresh).restore() == 1
    for a, b in zip(trained.weights + trained.optimizer.variables,
                    fresh.weights + fresh.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert any(np.abs(v.numpy()).sum() > 0 for v in fresh.optimizer.variables[1:])


# --- the real TFX Trainer on real images -------------------------------------


def _make_pipeline_inputs(out, data_root):
    """ExampleGen + Transform(materialize=False) outputs from real JPEGs."""
    from tfx.components.transform import executor as transform_executor
    from tfx.proto import transform_pb2
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    from model_garden.components import cifar10_example_gen as gen
    from model_garden.datasets import SplitSpec

    src = os.path.join(data_root, "cifar10", JPG)
    base = os.path.join(out, "raw")
    for split, per_class in (("train", 2), ("test", 1)):
        for name in sorted(os.listdir(os.path.join(src, split))):
            os.makedirs(os.path.join(base, split, name))
            for path in sorted(glob.glob(os.path.join(src, split, name, "*.jpg")))[:per_class]:
                shutil.copy(path, os.path.join(base, split, name))
    component = gen.make_example_gen(base, SplitSpec())
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out, "examples")
    gen.Executor().Do({}, {specs.EXAMPLES_KEY: [examples]}, {
        specs.INPUT_BASE_KEY: base,
        specs.INPUT_CONFIG_KEY: component.exec_properties[specs.INPUT_CONFIG_KEY],
        specs.OUTPUT_CONFIG_KEY: component.exec_properties[specs.OUTPUT_CONFIG_KEY],
    })
    schema = standard_artifacts.Schema()
    schema.uri = os.path.join(out, "schema")
    os.makedirs(schema.uri)
    shutil.copy(os.path.join(REPO, "model_garden", "schemas", "cifar10.pbtxt"),
                os.path.join(schema.uri, "schema.pbtxt"))
    graph = standard_artifacts.TransformGraph()
    graph.uri = os.path.join(out, "transform_graph")
    transform_executor.Executor().Do(
        {specs.EXAMPLES_KEY: [examples], specs.SCHEMA_KEY: [schema]},
        {specs.TRANSFORM_GRAPH_KEY: [graph]},  # no transformed_examples
        {
            specs.PREPROCESSING_FN_KEY: "model_garden.schemas.cifar10.preprocessing_fn",
            specs.SPLITS_CONFIG_KEY: proto_utils.proto_to_json(
                transform_pb2.SplitsConfig(analyze=["train"], transform=["train", "test"])
            ),
            specs.DISABLE_STATISTICS_KEY: 1,
            specs.FORCE_TF_COMPAT_V1_KEY: 0,
            specs.CUSTOM_CONFIG_KEY: "null",
        },
    )
    return {"base": base, "examples": examples.uri, "split_names": examples.split_names,
            "schema": schema.uri, "transform_graph": graph.uri,
            "model": os.path.join(out, "model"), "model_run": os.path.join(out, "model_run")}


def trainer_call(paths):
    """``(input_dict, output_dict, exec_properties)`` as TFX gives the Trainer."""
    from tfx.proto import trainer_pb2
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    def artifact(cls, uri, **props):
        a = cls()
        a.uri = uri
        for k, v in props.items():
            setattr(a, k, v)
        return [a]

    input_dict = {
        specs.EXAMPLES_KEY: artifact(standard_artifacts.Examples, paths["examples"],
                                     split_names=paths["split_names"]),
        specs.TRANSFORM_GRAPH_KEY: artifact(standard_artifacts.TransformGraph,
                                            paths["transform_graph"]),
        specs.SCHEMA_KEY: artifact(standard_artifacts.Schema, paths["schema"]),
    }
    output_dict = {
        specs.MODEL_KEY: artifact(standard_artifacts.Model, paths["model"]),
        specs.MODEL_RUN_KEY: artifact(standard_artifacts.ModelRun, paths["model_run"]),
    }
    exec_properties = {
        specs.TRAIN_ARGS_KEY: proto_utils.proto_to_json(
            trainer_pb2.TrainArgs(splits=["train"], num_steps=TRAIN_STEPS)),
        specs.EVAL_ARGS_KEY: proto_utils.proto_to_json(
            trainer_pb2.EvalArgs(splits=["test"], num_steps=EVAL_STEPS)),
        specs.RUN_FN_KEY: "model_garden.trainers.image_classifier.run_fn",
        specs.CUSTOM_CONFIG_KEY: json.dumps(RUN_CONFIG),
    }
    return input_dict, output_dict, exec_properties


def train_until_killed(paths_json):
    """Subprocess body: the real Trainer's fn_args, SIGKILLed at an epoch start."""
    import signal

    import tensorflow as tf
    from tfx.components.trainer import executor

    from model_garden.trainers import image_classifier

    class SigkillAtEpoch(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == KILL_AT_EPOCH:
                os.kill(os.getpid(), signal.SIGKILL)

    fn_args = executor.GenericExecutor()._GetFnArgs(*trainer_call(json.loads(paths_json)))
    image_classifier.train(fn_args, callbacks=[SigkillAtEpoch()])


def _checkpoint_values(directory):
    import tensorflow as tf

    path = tf.train.latest_checkpoint(directory)
    assert path, f"no checkpoint in {directory}"
    reader = tf.train.load_checkpoint(path)
    names = [n for n, _ in tf.train.list_variables(path)]
    [iterations] = [n for n in names if n.startswith("optimizer/") and "iter" in n]
    return (int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")),
            int(reader.get_tensor(iterations)))


def _epochs_logged(event_file):
    import tensorflow as tf

    return sorted({
        e.step for e in tf.compat.v1.train.summary_iterator(event_file)
        for v in e.summary.value if v.tag == "epoch_loss"
    })


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory, data_root):
    """Trainer killed (SIGKILL) at the start of epoch 2, then run again by TFX."""
    from tfx.components.trainer import executor

    out = str(tmp_path_factory.mktemp("image_classifier_run"))
    paths = _make_pipeline_inputs(out, data_root)
    killed = subprocess.run(
        [sys.executable, "-c",
         "import sys; from tests.test_image_classifier import train_until_killed as t; "
         "t(sys.argv[1])", json.dumps(paths)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    checkpoints = os.path.join(paths["model_run"], "checkpoints")
    after_kill = _checkpoint_values(checkpoints)
    events_before = set(glob.glob(os.path.join(paths["model_run"], "train", "events.*")))
    executor.GenericExecutor().Do(*trainer_call(paths))
    events_new = set(glob.glob(os.path.join(paths["model_run"], "train", "events.*")))
    return {
        "paths": paths, "killed": killed, "after_kill": after_kill,
        "after_restart": _checkpoint_values(checkpoints),
        "new_event_files": sorted(events_new - events_before),
    }


@pytest.mark.slow
def test_killed_trainer_resumes_from_its_last_epoch(resumed_run):
    killed = resumed_run["killed"]
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL, not an exit
    # The checkpoint written at the end of epoch 1 (epochs count from 0).
    assert resumed_run["after_kill"] == (KILL_AT_EPOCH, KILL_AT_EPOCH * STEPS_PER_EPOCH)
    # The restarted Trainer logged only epochs 2 and 3 ...
    [events] = resumed_run["new_event_files"]
    epochs = TRAIN_STEPS // STEPS_PER_EPOCH
    assert _epochs_logged(events) == list(range(KILL_AT_EPOCH, epochs))
    # ... and continued the optimizer's step count (hence the LR schedule).
    assert resumed_run["after_restart"] == (epochs, TRAIN_STEPS)


@pytest.mark.slow
def test_exported_signatures(resumed_run, data_root):
    import tensorflow as tf

    paths = resumed_run["paths"]
    loaded = tf.saved_model.load(os.path.join(paths["model"], "Format-Serving"))
    assert set(loaded.signatures) == {"serving_default", "classify_images"}

    files = sorted(glob.glob(os.path.join(data_root, "cifar10", JPG, "test", "*", "0099.jpg")))
    encoded = [open(p, "rb").read() for p in files]
    by_bytes = loaded.signatures["classify_images"](images=tf.constant(encoded))
    probabilities = by_bytes["probabilities"].numpy()
    assert probabilities.shape == (len(files), 10)
    assert by_bytes["classes"].dtype == tf.int64
    np.testing.assert_array_equal(by_bytes["classes"].numpy(), probabilities.argmax(-1))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)

    # The same images as raw serialized tf.Examples (no label) through
    # serving_default give the same predictions.
    serialized = [ie.image_to_tfexample(data, "jpeg", 32, 32, None).SerializeToString()
                  for data in encoded]
    by_example = loaded.signatures["serving_default"](examples=tf.constant(serialized))
    np.testing.assert_allclose(by_example["probabilities"].numpy(), probabilities, rtol=1e-5)
    np.testing.assert_array_equal(by_example["classes"].numpy(), by_bytes["classes"].numpy())
