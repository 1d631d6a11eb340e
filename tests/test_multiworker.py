"""Multi-worker training on loopback: what a TFJob's replicas do, as local processes.

A chief and a worker process (``TF_CONFIG`` with free loopback ports) each run
``python -m model_garden.kubeflow.tfjob_entry --fn-args <invocation>``, the
TFJob replicas' command, on an invocation written by
``tfjob_entry.dump_invocation`` (what the TFJob Trainer executor writes). The
run_fn below trains the official MNIST CNN (``model_garden.trainers.mnist.build_model``)
under ``strategies.get_strategy(custom_config["strategy"])`` on 512 real MNIST
test images (``shared/data/mnist``, read with ``read_idx_pair``). Meanwhile
the test process trains the same on one worker (``tfjob_entry.run`` with
strategy ``default``, no ``TF_CONFIG``).

Checked: both clusters train; the two replicas formed one cluster (2 replicas
in sync, identical weights afterwards); only the chief wrote the SavedModel
and the worker's scratch outputs are gone; the multi-worker SavedModel serves
the same output shape as the single-worker one.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from model_garden.datasets.idx import read_idx_pair
from model_garden.kubeflow import tfjob_entry

pytestmark = pytest.mark.slow  # several processes training, about a minute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_FN = "tests.test_multiworker.run_fn"
EXAMPLES = 512
GLOBAL_BATCH = 32
TRAIN_STEPS = 6
TIMEOUT_S = 420  # per process; a loaded 2-core machine needs minutes


def run_fn(fn_args):
    """Trains the official MNIST CNN on ``fn_args.train_files`` (``.npz``) and saves it.

    ``custom_config``: ``strategy``. Writes ``train.json`` (replicas in sync,
    final loss) to ``model_run_dir`` and prints ``WEIGHTS <sum of |w|>``.
    """
    import glob

    import tensorflow as tf

    from model_garden.trainers import mnist, strategies

    strategy = strategies.get_strategy(fn_args.custom_config["strategy"])
    files = sorted(f for pattern in fn_args.train_files for f in glob.glob(pattern))
    with np.load(files[0]) as data:
        images, labels = data["images"], data["labels"]
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"image": images[..., None].astype("float32") / 255.0}, labels.astype("int64")))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.repeat().batch(GLOBAL_BATCH).with_options(options)
    with strategy.scope():
        model = mnist.build_model(1e-3)
    history = model.fit(dataset, steps_per_epoch=fn_args.train_steps, epochs=1, verbose=0)
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    with open(os.path.join(fn_args.model_run_dir, "train.json"), "w") as f:
        json.dump({"replicas": strategy.num_replicas_in_sync,
                   "loss": float(history.history["loss"][-1])}, f)
    total = sum(float(np.abs(w).sum()) for w in model.get_weights())
    print(f"WEIGHTS {total:.6f}", flush=True)
    model.save(fn_args.serving_model_dir, save_format="tf")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _invocation(root: str, name: str, strategy: str, examples_dir: str) -> str:
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = examples_dir
    examples.split_names = artifact_utils.encode_split_names(["train", "test"])
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri = os.path.join(root, name, "model")
    model_run.uri = os.path.join(root, name, "model_run")
    return tfjob_entry.dump_invocation(
        os.path.join(model_run.uri, "tfjob", "fn_args.json"),
        {"examples": [examples]}, {"model": [model], "model_run": [model_run]},
        {"train_args": json.dumps({"splits": ["train"], "num_steps": TRAIN_STEPS}),
         "eval_args": json.dumps({"splits": ["test"], "num_steps": 1}),
         "run_fn": RUN_FN,
         "custom_config": json.dumps({"strategy": strategy})})


def _start(fn_args: str, tf_config, tmpdir: str, log: str, **extra_env) -> subprocess.Popen:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT, TMPDIR=tmpdir,
               OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               **extra_env)
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    os.makedirs(tmpdir, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "model_garden.kubeflow.tfjob_entry", "--fn-args", fn_args],
        cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _finish(process: subprocess.Popen, log: str) -> str:
    try:
        process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with open(log) as f:
        text = f.read()
    assert process.returncode == 0, f"{log} (exit {process.returncode}):\n{text[-4000:]}"
    return text


def test_chief_and_worker_train_one_model_like_a_single_worker(tmp_path, mnist_dir):
    images, labels = read_idx_pair(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"),
                                   os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"))
    examples_dir = str(tmp_path / "examples")
    for split, part in (("train", slice(0, EXAMPLES)), ("test", slice(EXAMPLES, EXAMPLES + 64))):
        os.makedirs(os.path.join(examples_dir, f"Split-{split}"))
        np.savez(os.path.join(examples_dir, f"Split-{split}", "data.npz"),
                 images=images[part], labels=labels[part])
    out = str(tmp_path / "out")
    multi = _invocation(out, "multi", "multi_worker", examples_dir)
    single = _invocation(out, "single", "default", examples_dir)

    cluster = {"chief": [f"localhost:{_free_port()}"], "worker": [f"localhost:{_free_port()}"]}
    logs = {k: str(tmp_path / f"{k}.log") for k in ("chief", "worker")}
    scratch = {k: str(tmp_path / "tmp" / k) for k in logs}
    processes = {
        "chief": _start(multi, {"cluster": cluster, "task": {"type": "chief", "index": 0}},
                        scratch["chief"], logs["chief"]),
        "worker": _start(multi, {"cluster": cluster, "task": {"type": "worker", "index": 0}},
                         scratch["worker"], logs["worker"]),
    }
    # The single-worker baseline trains in this process meanwhile.
    assert tfjob_entry.run(single, tf_config={}).startswith(os.path.join(out, "single"))
    text = {k: _finish(p, logs[k]) for k, p in processes.items()}

    def weights(k):
        (line,) = [l for l in text[k].splitlines() if l.startswith("WEIGHTS ")]
        return float(line.split()[1])

    def trained(name):
        with open(os.path.join(out, name, "model_run", "train.json")) as f:
            return json.load(f)

    # One cluster: two replicas in sync, the same weights in both processes.
    assert trained("multi")["replicas"] == 2
    assert trained("single")["replicas"] == 1
    assert weights("chief") == weights("worker")
    assert np.isfinite(trained("multi")["loss"]) and np.isfinite(trained("single")["loss"])
    # Only the chief wrote outputs; the worker's scratch folder is gone.
    serving = {n: os.path.join(out, n, "model", "Format-Serving") for n in ("multi", "single")}
    assert os.path.isfile(os.path.join(serving["multi"], "saved_model.pb"))
    assert sorted(os.listdir(os.path.join(out, "multi", "model_run"))) == ["tfjob", "train.json"]
    assert os.listdir(scratch["worker"]) == []
    assert "(chief) trains" in text["chief"] and "deleted afterwards" in text["worker"]

    # The multi-worker model serves what the single-worker one does.
    import tensorflow as tf

    batch = tf.constant(images[-16:, ..., None].astype("float32") / 255.0)
    shapes = {}
    for name, path in serving.items():
        serve = tf.saved_model.load(path).signatures["serving_default"]
        (logits,) = serve(image=batch).values()
        assert np.isfinite(logits.numpy()).all()
        shapes[name] = tuple(logits.shape)
    assert shapes["multi"] == shapes["single"] == (16, 10)


# --- a restarted TFJob: every replica resumes from the same epoch -------------------------

RESTART_RUN_FN = "tests.test_multiworker.image_run_fn"
KILL_ENV = "MODEL_GARDEN_TEST_KILL_AT_EPOCH"
IMAGE_STEPS, IMAGE_STEPS_PER_EPOCH, IMAGE_KILL_AT_EPOCH = 8, 2, 2
IMAGE_CONFIG = {"net": "resnet_v1_20_cifar", "num_classes": 10, "batch_size": 8,
                "train_examples": 16, "steps_per_epoch": IMAGE_STEPS_PER_EPOCH, "strategy": "multi_worker",
                "mixed_precision": "float32", "epochs_between_evals": 2}


def image_run_fn(fn_args):
    """The CIFAR image classifier's ``train``; prints each epoch it starts, and
    SIGKILLs itself at the start of epoch ``$MODEL_GARDEN_TEST_KILL_AT_EPOCH``
    (what a preempted node does to a replica)."""
    import signal

    import tensorflow as tf

    from model_garden.trainers import image_classifier

    class Probe(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print(f"EPOCH_BEGIN {epoch}", flush=True)
            if str(epoch) == os.environ.get(KILL_ENV):
                os.kill(os.getpid(), signal.SIGKILL)

    image_classifier.train(fn_args, callbacks=[Probe()])


def _image_invocation(paths, root):
    from tfx.types import standard_artifacts

    def artifact(cls, uri):
        a = cls()
        a.uri = uri
        return a

    examples = artifact(standard_artifacts.Examples, paths["examples"])
    examples.split_names = paths["split_names"]
    return tfjob_entry.dump_invocation(
        os.path.join(root, "model_run", "tfjob", "fn_args.json"),
        {"examples": [examples],
         "transform_graph": [artifact(standard_artifacts.TransformGraph, paths["transform_graph"])],
         "schema": [artifact(standard_artifacts.Schema, paths["schema"])]},
        {"model": [artifact(standard_artifacts.Model, os.path.join(root, "model"))],
         "model_run": [artifact(standard_artifacts.ModelRun, os.path.join(root, "model_run"))]},
        {"train_args": json.dumps({"splits": ["train"], "num_steps": IMAGE_STEPS}),
         "eval_args": json.dumps({"splits": ["test"], "num_steps": 1}),
         "run_fn": RESTART_RUN_FN,
         "custom_config": json.dumps(IMAGE_CONFIG)})


def _first_epoch(text):
    epochs = [int(l.split()[1]) for l in text.splitlines() if l.startswith("EPOCH_BEGIN ")]
    assert epochs, text[-3000:]
    return epochs[0]


def test_killed_replicas_all_resume_from_the_chiefs_last_epoch(tmp_path, data_root):
    """Chief and worker train the CIFAR ResNet under MultiWorkerMirroredStrategy, are
    SIGKILLed at the start of epoch 2 (the TFJob's pods die), and start again on the same
    invocation (the Training Operator restarts them): both resume at epoch 2 from the
    chief's checkpoint, train the remaining epochs in step and the chief exports."""
    from tests.test_image_classifier import _make_pipeline_inputs

    paths = _make_pipeline_inputs(str(tmp_path / "inputs"), data_root)
    out = str(tmp_path / "out")
    fn_args = _image_invocation(paths, out)
    cluster = {"chief": [f"localhost:{_free_port()}"], "worker": [f"localhost:{_free_port()}"]}
    tf_config = {k: {"cluster": cluster, "task": {"type": k, "index": 0}}
                 for k in ("chief", "worker")}

    def launch(attempt, kill_at):
        logs = {k: str(tmp_path / f"{k}-{attempt}.log") for k in tf_config}
        processes = {k: _start(fn_args, tf_config[k], str(tmp_path / "tmp" / k), logs[k],
                               **{KILL_ENV: str(kill_at)})
                     for k in tf_config}
        results = {}
        for k, p in processes.items():
            try:
                p.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for q in processes.values():
                    q.kill()
                p.wait()
            with open(logs[k]) as f:
                results[k] = (p.returncode, f.read())
        return results

    killed = launch(1, IMAGE_KILL_AT_EPOCH)
    for k, (code, text) in killed.items():
        assert code == -9, f"{k} (exit {code}):\n{text[-3000:]}"
        assert _first_epoch(text) == 0
    restarted = launch(2, -1)
    first = {k: _first_epoch(text) for k, (_, text) in restarted.items()}
    assert first == {"chief": IMAGE_KILL_AT_EPOCH, "worker": IMAGE_KILL_AT_EPOCH}, first
    for k, (code, text) in restarted.items():
        assert code == 0, f"{k} (exit {code}):\n{text[-3000:]}"
    assert os.path.isfile(os.path.join(out, "model", "Format-Serving", "saved_model.pb"))
