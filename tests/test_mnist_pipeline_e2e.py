"""End to end: the MNIST recipe on the real 10k digits, through BeamDagRunner.

One module-scoped output root holds three runs of `model-garden run mnist`:
1. a fresh run: every component succeeds, the model is blessed and pushed;
2. the same command again: the data and training components come from the
   TFX cache (MLMD executions in state CACHED);
3. a run whose threshold cannot be met: not blessed, nothing new pushed, and
   the earlier pushed model is left byte for byte as it was.
"""

import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from model_garden.pipelines import report

pytestmark = pytest.mark.slow

STEPS = ["--train-steps", "300", "--eval-steps", "20"]
# in_memory: on the 2-core CI machine Beam's multi_processing mode spends
# about 3 minutes per run starting worker processes (see the README's
# benchmark); the pipeline under test is the same.
COMMON = ["--split", "hash:80/20", *STEPS, "--threshold", "0.9",
          "--direct-running-mode", "in_memory"]


def _run(output_root, *args, full=False):
    cmd = [sys.executable, "-m", "model_garden.cli", "run", "mnist",
           "--output-root", str(output_root), *COMMON, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc if full else proc.stdout


def _tree_digest(folder):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(path.encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def output_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist-e2e")
    first = _run(root, full=True)
    return root, first


def _metadata(root):
    return os.path.join(root, "mnist", "metadata.sqlite")


def _serving(root):
    return os.path.join(root, "serving", "mnist")


def test_first_run_every_component_succeeds_and_the_model_is_pushed(output_root):
    root, proc = output_root
    stdout = proc.stdout
    runs = {r.node_id: r for r in report.component_runs(_metadata(root))}
    assert set(runs) == {
        "ExampleGen", "StatisticsGen", "CuratedSchema", "InferredSchema", "ExampleValidator",
        "AnomaliesGate", "Transform", "Trainer", "LatestBlessedModel", "Evaluator", "Pusher",
    }
    assert {r.state for r in runs.values()} == {"COMPLETE"}
    assert runs["ExampleValidator"].blessed is True  # real data matches the curated schema
    assert runs["Evaluator"].blessed is True
    assert runs["Pusher"].blessed is True
    versions = os.listdir(_serving(root))
    assert len(versions) == 1 and versions[0].isdigit()
    assert "pushed: " + os.path.join(_serving(root), versions[0]) in stdout
    # TensorBoard logs in the Trainer's model run directory.
    import glob

    events = glob.glob(os.path.join(root, "mnist", "pipeline", "Trainer", "model_run", "*",
                                    "**", "events.out.tfevents.*"), recursive=True)
    assert events


def _eval_split_digits(root):
    """The real digits and labels of the run's `test` split (Evaluator's data)."""
    import glob

    import tensorflow as tf

    files = glob.glob(os.path.join(root, "mnist", "pipeline", "ExampleGen", "examples", "*",
                                   "Split-test", "*.gz"))
    images, labels = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        f = example.features.feature
        images.append(tf.io.decode_png(f["image/encoded"].bytes_list.value[0]).numpy()[..., 0])
        labels.append(f["image/class/label"].int64_list.value[0])
    return np.stack(images), np.array(labels)


def _evaluator_accuracy(root):
    import glob

    import tensorflow_model_analysis as tfma

    [uri] = glob.glob(os.path.join(root, "mnist", "pipeline", "Evaluator", "evaluation", "*"))
    result = tfma.load_eval_result(uri)
    overall = dict(result.slicing_metrics)[()]
    return overall[""][""]["sparse_categorical_accuracy"]["doubleValue"]


def _evaluator_accuracy_of_latest(root):
    """The candidate's accuracy in the newest Evaluator output (it has a baseline)."""
    import glob

    import tensorflow_model_analysis as tfma

    uri = max(glob.glob(os.path.join(root, "mnist", "pipeline", "Evaluator", "evaluation", "*")),
              key=lambda p: int(os.path.basename(p)))
    result = tfma.load_eval_result(uri, model_name="candidate")
    overall = dict(result.slicing_metrics)[()]
    return overall[""][""]["sparse_categorical_accuracy"]["doubleValue"]


def test_the_terminal_gets_one_screen_and_the_log_gets_the_rest(output_root):
    """Quiet by default: our lines on stdout, nothing on stderr, library records in the log."""
    root, proc = output_root
    lines = proc.stdout.splitlines()
    assert proc.stderr == ""
    assert len(lines) <= 24, proc.stdout  # one screen
    [run_id] = [line.split(" ", 1)[1] for line in lines if line.startswith("run ")]
    log_path = os.path.join(root, "mnist", "logs", f"{run_id}.log")
    assert f"log: {log_path}" in lines
    components = [line.split()[0] for line in lines if line.startswith("  ")]
    assert set(components) == {r.node_id for r in report.component_runs(_metadata(root), run_id)}
    for line in lines:
        assert line.startswith(("run ", "log: ", "  ", "anomalies: ", "evaluation: ", "pushed: ",
                                "report: ")), line
    with open(log_path) as f:
        log = f.read()
    # absl (TFX's orchestration), the Trainer's Keras output, the Pusher's record, TF's C++.
    assert "node ExampleGen is finished." in log and "Epoch 1/" in log
    assert "Model moved into place at" in log
    assert "cuda" in log.lower() or "oneDNN" in log, log[:2000]
    # The run's HTML report is written at the end (its content: tests/test_html_report.py).
    assert f"report: {os.path.join(root, 'mnist', 'reports', run_id + '.html')}" in lines
    assert os.path.isfile(os.path.join(root, "mnist", "reports", run_id + ".html"))
    # The verdict in words, with the value TFMA measured.
    assert f"evaluation: sparse_categorical_accuracy {_evaluator_accuracy(root):.4f} >= 0.9: " \
           "blessed" in lines


def test_pushed_model_classify_signature_labels_real_test_digits(output_root):
    import tensorflow as tf

    root, _ = output_root
    [version] = os.listdir(_serving(root))
    model = tf.saved_model.load(os.path.join(_serving(root), version))
    images, labels = _eval_split_digits(root)
    assert 1500 < len(labels) < 2500  # the 20% hash split of 10,000
    classify = model.signatures["classify"]
    out = classify(image=tf.constant(images / 255.0, tf.float32))
    accuracy = float(np.mean(out["classes"].numpy() == labels))
    measured = _evaluator_accuracy(root)
    # The serving signature reproduces the Evaluator's measurement on the same digits.
    assert accuracy == pytest.approx(measured, abs=1e-6)
    assert accuracy > 0.95, accuracy
    # serving_default (tf.Examples, through the Transform graph) agrees with classify.
    from model_garden.components.image_example import png_example

    serialized = [png_example(img, 0).SerializeToString() for img in images[:50]]
    probs = model.signatures["serving_default"](examples=tf.constant(serialized))["probabilities"]
    np.testing.assert_array_equal(np.argmax(probs, -1), out["classes"].numpy()[:50])


def _run_in_terminal(output_root):
    """`model-garden run` with its stdout on a pseudo-terminal, as a user sees it.

    Returns:
      (the terminal's bytes as text, stderr).
    """
    import pty

    controller, terminal = pty.openpty()
    cmd = [sys.executable, "-m", "model_garden.cli", "run", "mnist",
           "--output-root", str(output_root), *COMMON]
    proc = subprocess.Popen(cmd, stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=1500) == 0, screen.decode()[-3000:] + err[-3000:]
    return screen.decode(), err


def test_second_run_reuses_the_cache_under_the_live_display(output_root):
    import re

    root, _ = output_root
    screen, err = _run_in_terminal(root)
    runs = {r.node_id: r.state for r in report.component_runs(_metadata(root))}
    for node in ("ExampleGen", "StatisticsGen", "CuratedSchema", "InferredSchema",
                 "ExampleValidator", "Transform", "Trainer"):
        assert runs[node] == "CACHED", (node, runs)
    assert err == ""
    # rich's live table: redrawn in place (cursor-up, erase-line), coloured states.
    assert "\x1b[1A" in screen and "\x1b[2K" in screen
    # What follows the last erase-line is the final redraw, then the outcome lines.
    final = screen[screen.rindex("\x1b[2K") + len("\x1b[2K"):]
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", final).replace("\r", "").splitlines()
    end = max(i for i, line in enumerate(lines) if line.startswith("anomalies: "))
    last_table = "\n".join(lines[end - len(runs):end])  # the display's final state
    for node, state in runs.items():
        word = {"CACHED": "cached", "COMPLETE": "done"}[state]
        assert re.search(rf"^\s*{node}\s+{word}\b", last_table, re.M), (node, word, last_table)
    # Judged against the model the first run pushed: the same model, the same value.
    [verdict] = [line for line in lines[end:] if line.startswith("evaluation: ")]
    accuracy = _evaluator_accuracy_of_latest(root)
    assert verdict == (f"evaluation: sparse_categorical_accuracy {accuracy:.4f} >= 0.9, "
                       f"baseline {accuracy:.4f}: blessed"), verdict
    # The Evaluator judged the same model against itself (the pushed copy): no new push.
    assert any(line.startswith("nothing new to push: the blessed model is the one already "
                               "served") for line in lines[end:]), lines[end:]


def test_unmet_threshold_is_not_pushed_and_keeps_the_pushed_model(output_root):
    root, _ = output_root
    before = _tree_digest(_serving(root))
    versions = sorted(os.listdir(_serving(root)))
    stdout = _run(root, "--threshold", "0.9999")
    runs = {r.node_id: r for r in report.component_runs(_metadata(root))}
    assert runs["Evaluator"].state == "COMPLETE" and runs["Evaluator"].blessed is False
    assert runs["Pusher"].blessed is False
    assert sorted(os.listdir(_serving(root))) == versions
    assert _tree_digest(_serving(root)) == before
    assert "not pushed: the model was not blessed" in stdout
    assert re.search(r"^evaluation: sparse_categorical_accuracy 0\.\d{4} < 0\.9999, baseline "
                     r"0\.\d{4}: not blessed$", stdout, re.M), stdout


def test_corrupt_input_fails_clearly_and_publishes_nothing(output_root, mnist_dir, tmp_path):
    """A truncated idx file stops the run at the ExampleGen, naming the file."""
    import shutil

    root, _ = output_root
    before = _tree_digest(_serving(root))
    data = tmp_path / "mnist"
    data.mkdir()
    for name in ("t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(os.path.join(mnist_dir, name), data / name)
    with open(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        (data / "t10k-images-idx3-ubyte.gz").write_bytes(f.read()[:200_000])
    cmd = [sys.executable, "-m", "model_garden.cli", "run", "mnist", "--output-root", str(root),
           "--data-dir", str(data), *COMMON]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1
    last_lines = "\n".join(proc.stderr.strip().splitlines()[-3:])
    assert "t10k-images-idx3-ubyte.gz" in last_lines, proc.stderr[-3000:]
    assert "Error: the mnist pipeline failed" in proc.stderr
    runs = {r.node_id: r for r in report.component_runs(_metadata(root))}
    assert runs["ExampleGen"].state == "FAILED"
    assert "Trainer" not in runs and "Pusher" not in runs
    from ml_metadata.proto import metadata_store_pb2

    store = report.open_store(_metadata(root))
    failed = [e for e in store.get_events_by_execution_ids([runs["ExampleGen"].execution_id])
              if e.type == e.OUTPUT]
    states = {a.state for a in store.get_artifacts_by_id([e.artifact_id for e in failed])}
    assert metadata_store_pb2.Artifact.LIVE not in states
    assert _tree_digest(_serving(root)) == before
