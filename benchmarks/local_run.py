"""The local run against its peers (issue 12; ``make bench``).

Runs, one after another on the same machine, each in a child process of its
own (its imports count), and prints one markdown table:

(a) **TFX's own MNIST example**, the installed wheel's
    ``tfx/examples/mnist/mnist_pipeline_native_keras.py`` run as is
    (``python <tfx>/examples/mnist/mnist_pipeline_native_keras.py``) with its
    own settings: BeamDagRunner, ``--direct_running_mode=multi_processing``
    (``--direct_num_workers=0``: one per core), Trainer 5,000 train / 100 eval
    steps, its module file ``mnist_utils_native_keras.py`` (Transform and
    Trainer: a 64-64 dense model), Evaluator (accuracy >= 0.8) and Pusher.
    It hard-codes its paths under ``$HOME``: the child gets ``HOME`` = a fresh
    temporary folder holding ``mnist/data/mnist.tfrecord`` and
    ``mnist/mnist_utils_native_keras.py`` (copied from the wheel); it writes
    ``tfx/`` and ``mnist/serving_model/`` there. Its data are the first 1,000
    digits of the shared ``t10k`` files in the example's format
    (:func:`write_tfx_example_data`): the example ships "a selection of 1000
    records from the MNIST dataset ... a tf.Example with 2 columns of data:
    'image_floats' representing the 28x28 image as 784 float values, and
    'image_class' representing the label with values [0-9]"
    (``tfx/examples/mnist/README.md``), floats "in the range [-0.5, 0.5]"
    (``tfx/examples/mnist/mnist_utils_native_keras_base.py``,
    ``preprocessing_fn``; keys ``IMAGE_KEY`` / ``LABEL_KEY`` there), read by
    its ``ImportExampleGen`` (default 2:1 train:eval hash split). Accuracy:
    its Evaluator's, on its eval split (about 333 of the 1,000).
(b) **a plain Keras script**, ``benchmarks/plain_keras_mnist.py``: the
    ``mnist`` recipe's model, batch size, train steps and learning-rate
    schedule on the 8k/2k that ``--split hash:80/20`` gives (its train/test
    masks hashed beforehand, outside its clock, and passed as a file); idx files ->
    numpy -> tf.data -> fit -> evaluate on the 2k -> SavedModel (see its
    docstring). Accuracy: its ``evaluate`` on the 2k.
(c) **``make demo``'s command** from a fresh output root:
    ``model-garden run mnist --split hash:80/20 --threshold 0.98
    --output-root <fresh>`` (``python -m model_garden.cli``, this checkout's
    code); whole wall time, each component's time from ML Metadata
    (:func:`model_garden.pipelines.report.component_runs`: execution create to
    last update), accuracy from the Evaluator (TFMA, on the 2k).
(d) the same command again on that root, nothing changed: the Evaluator (and
    Pusher) may re-run, their baseline input now being the model (c) blessed;
    the table names what ran and what came from the cache. (d2) a third time:
    everything cached.

Also the wall time of ``model-garden --help`` and ``model-garden list``
(median of 5 each).

Memory: the peak resident set of the largest single process of each of
(a)-(d2), by :func:`benchmarks.common.measured_run`: ``os.wait4``'s
``ru_maxrss`` of the child (on Linux the max over the child and every
descendant it waited for; Beam's DirectRunner waits for its
``multi_processing`` SDK workers, so they are covered), cross-checked by
psutil sampling of the child's whole process tree every 0.5 s; the larger
of the two is reported.

Targets (issue 12): (c)/(a) wall <= 0.75; (c)/(b) wall <= 1.6; (d) < 15 s;
``--help`` and ``list`` < 1 s; peak memory of any one process < 1,536 MiB.
Each target row says met or **missed** with the measured value. Nothing is
tuned to pass: the data and settings above are the only ones.

Options (``benchmarks/run.py local_run``): ``--modes a,b`` runs (c)/(d)/(d2)
once per Beam DirectRunner mode (``--direct-running-mode``; the default
``multi_processing`` is ``make demo``'s and passes no flag). ``--smoke`` is
for SMOKE TESTS ONLY, never for reported numbers: the TFX example trains 50
steps instead of 5,000 and blesses at accuracy 0.5 instead of 0.8 (a patched
copy of its pipeline file, run with the same ``HOME`` layout), our runs 50 train steps (``--train-steps 50``) with
``--threshold 0.5`` so that a model is blessed and (d)'s Evaluator re-run
path is exercised, and the CLI timings are taken once instead of 5 times.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

from benchmarks.common import checkout_env, cli_command, markdown_table, measured_run
from benchmarks.common import tfma_overall_metrics
from model_garden.pipelines import report

#: ``make demo``'s arguments (Makefile ``demo``).
DEMO_ARGS = ["--split", "hash:80/20", "--threshold", "0.98"]
DEFAULT_MODE = "auto"  # the CLI's default: in_memory for the demo's 1.6 MB of digits
TFX_EXAMPLE_RECORDS = 1000
TFX_PIPELINE_NAME = "mnist_native_keras"  # the example's _pipeline_name
SMOKE_STEPS = 50
PEAK_TARGET_MIB = 1536
ACCURACY_KEY = "sparse_categorical_accuracy"


def tfx_example_files() -> Dict[str, str]:
    """Paths of the installed wheel's MNIST example: ``pipeline``, ``module`` (its utils)."""
    import tfx

    folder = os.path.join(os.path.dirname(tfx.__file__), "examples", "mnist")
    return {"pipeline": os.path.join(folder, "mnist_pipeline_native_keras.py"),
            "module": os.path.join(folder, "mnist_utils_native_keras.py")}


def mnist_dir() -> str:
    """The shared MNIST folder, ``$MODEL_GARDEN_DATA/mnist``."""
    return os.path.join(os.environ["MODEL_GARDEN_DATA"], "mnist")


def write_tfx_example_data(path: str, count: int = TFX_EXAMPLE_RECORDS) -> int:
    """Writes the first ``count`` ``t10k`` digits as the TFX MNIST example's records.

    One uncompressed TFRecord file of ``tf.train.Example``s with
    ``image_floats`` (float list of 784: pixel / 255 - 0.5, in [-0.5, 0.5])
    and ``image_class`` (int64, 0..9): the format of the example's
    ``data/mnist.tfrecord`` (module docstring).

    Returns:
      The number of records written.
    """
    import numpy as np
    import tensorflow as tf

    from model_garden.components.mnist_example_gen import find_pairs
    from model_garden.datasets.idx import read_idx_pair

    (pair,) = [p for p in find_pairs(mnist_dir(), "t10k-*", strict=True)]
    images, labels = read_idx_pair(*pair)
    images, labels = images[:count], labels[:count]
    with tf.io.TFRecordWriter(path) as writer:
        for pixels, label in zip(images, labels):
            floats = (pixels.reshape(-1).astype(np.float32) / 255.0 - 0.5).tolist()
            example = tf.train.Example(features=tf.train.Features(feature={
                "image_floats": tf.train.Feature(float_list=tf.train.FloatList(value=floats)),
                "image_class": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
            }))
            writer.write(example.SerializeToString())
    return len(labels)


def _smoke_copy(pipeline: str, folder: str) -> str:
    """A copy of the example's pipeline file training ``SMOKE_STEPS`` steps (smoke tests only)."""
    patched = open(pipeline).read()
    # 50 steps reach ~0.67 accuracy: a threshold of 0.5 (ours too, in smoke
    # tests) has the Pusher push, so that its path is exercised.
    for old, new in (("num_steps=5000", f"num_steps={SMOKE_STEPS}"),
                     ("accuracy_threshold: float = 0.8", "accuracy_threshold: float = 0.5")):
        if old not in patched:
            raise RuntimeError(f"{pipeline}: no {old!r} to change for --smoke")
        patched = patched.replace(old, new)
    path = os.path.join(folder, os.path.basename(pipeline))
    with open(path, "w") as f:
        f.write(patched)
    return path


def _components(metadata_path: str) -> List[report.ComponentRun]:
    return report.component_runs(metadata_path)


def run_tfx_example(home: str, smoke: bool = False) -> Dict:
    """(a): TFX's MNIST example, as is, in a child process with ``HOME=home``.

    Returns:
      ``{"run": Measured, "components": [ComponentRun], "accuracy", "pushed": [versions],
      "records"}``.
    """
    files = tfx_example_files()
    data = os.path.join(home, "mnist", "data")
    os.makedirs(data)
    records = write_tfx_example_data(os.path.join(data, "mnist.tfrecord"))
    shutil.copy(files["module"], os.path.join(home, "mnist"))
    pipeline = files["pipeline"]
    if smoke:
        pipeline = _smoke_copy(pipeline, os.path.dirname(os.path.abspath(home)))
    env = dict(os.environ, HOME=home)
    run = measured_run([sys.executable, pipeline], env=env, cwd=home)
    tfx_root = os.path.join(home, "tfx")
    components = _components(os.path.join(tfx_root, "metadata", TFX_PIPELINE_NAME, "metadata.db"))
    metrics = tfma_overall_metrics(os.path.join(tfx_root, "pipelines", TFX_PIPELINE_NAME,
                                                "Evaluator.mnist", "evaluation"))
    serving = os.path.join(home, "mnist", "serving_model", TFX_PIPELINE_NAME)
    pushed = sorted(os.listdir(serving)) if os.path.isdir(serving) else []
    return {"run": run, "components": components, "accuracy": metrics[ACCURACY_KEY],
            "pushed": pushed, "records": records}


def run_plain_keras(out: str, smoke: bool = False) -> Dict:
    """(b): ``benchmarks/plain_keras_mnist.py`` in a child process.

    Returns:
      ``{"run": Measured, "result": the script's RESULT dict}``.
    """
    from benchmarks.plain_keras_mnist import write_split_file

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plain_keras_mnist.py")
    os.makedirs(out)
    split_file = os.path.join(out, "split.npz")
    write_split_file(mnist_dir(), split_file)  # before the clock: see write_split_file
    cmd = [sys.executable, script, "--out", out, "--split-file", split_file]
    if smoke:
        cmd += ["--train-steps", str(SMOKE_STEPS)]
    run = measured_run(cmd, env=checkout_env())
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return {"run": run, "result": json.loads(line[len("RESULT "):])}


def demo_command(output_root: str, mode: str = DEFAULT_MODE, smoke: bool = False) -> List[str]:
    """``make demo``'s command on ``output_root`` (plus the mode when not the default)."""
    args = ["run", "mnist", *DEMO_ARGS, "--output-root", output_root]
    if mode != DEFAULT_MODE:
        args += ["--direct-running-mode", mode]
    if smoke:
        args += ["--train-steps", str(SMOKE_STEPS), "--threshold", "0.5"]  # the later one wins
    return cli_command(*args)


def run_demo(output_root: str, mode: str = DEFAULT_MODE, smoke: bool = False) -> Dict:
    """One ``make demo`` run on ``output_root``; (c) on a fresh root, (d)/(d2) after it.

    Returns:
      ``{"run": Measured, "components": [ComponentRun] of this run, "accuracy"}``.
    """
    run = measured_run(demo_command(output_root, mode, smoke), env=checkout_env())
    components = _components(os.path.join(output_root, "mnist", "metadata.sqlite"))
    metrics = tfma_overall_metrics(os.path.join(output_root, "mnist", "pipeline", "Evaluator",
                                                "evaluation"))
    return {"run": run, "components": components, "accuracy": metrics[ACCURACY_KEY]}


def cli_seconds(args: Sequence[str], repeats: int = 5) -> float:
    """Median wall seconds of ``model-garden ARGS`` over ``repeats`` runs."""
    return statistics.median(measured_run(cli_command(*args), env=checkout_env()).wall
                             for _ in range(repeats))


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _target(rows: List[List[str]], what: str, value: float, shown: str, target: str,
            ok) -> None:
    rows.append([what, shown, target, _verdict(ok(value))])


def _component_rows(rows: List[List[str]], label: str, components) -> None:
    for c in components:
        outcome = {True: ", blessed/pushed", False: ", not blessed/pushed"}.get(c.blessed, "")
        rows.append([f"{label} · {c.node_id}", f"{c.seconds:.1f} s ({c.state}{outcome})", "", ""])


def _ran_and_cached(components) -> str:
    ran = [c.node_id for c in components if c.state != "CACHED"]
    cached = [c.node_id for c in components if c.state == "CACHED"]
    return f"ran: {', '.join(ran) or 'none'}; cached: {', '.join(cached) or 'none'}"


def _mib(m) -> str:
    return f"{m.peak_mib:,.0f} MiB"


def run(modes: Sequence[str] = (DEFAULT_MODE,), smoke: bool = False) -> str:
    """Runs (a), (b), then (c)/(d)/(d2) per mode, then the CLI timings; returns the table."""
    rows: List[List[str]] = []
    peaks: List[tuple] = []
    terminals: List[tuple] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-local-run-") as tmp:
        a = run_tfx_example(os.path.join(tmp, "home"), smoke)
        rows.append([f"(a) TFX example (`mnist_pipeline_native_keras.py`, {a['records']:,} "
                     f"records, {SMOKE_STEPS if smoke else 5000} train steps), whole run",
                     f"{a['run'].wall:.1f} s; accuracy {a['accuracy']:.4f} (its eval split); "
                     f"peak {_mib(a['run'])}; pushed: {', '.join(a['pushed']) or 'nothing'}",
                     "", ""])
        _component_rows(rows, "(a)", a["components"])
        peaks.append(("(a)", a["run"]))

        b = run_plain_keras(os.path.join(tmp, "plain"), smoke)
        r = b["result"]
        rows.append([f"(b) plain Keras (`plain_keras_mnist.py`, {r['train_steps']} steps of "
                     f"{r['batch_size']})",
                     f"{b['run'].wall:.1f} s (imports {r['seconds']['imports']:.1f}, data "
                     f"{r['seconds']['data']:.1f}, fit {r['seconds']['fit']:.1f}, evaluate "
                     f"{r['seconds']['evaluate']:.1f}, export {r['seconds']['export']:.1f}); "
                     f"accuracy {r['accuracy']:.4f} ({r['test_examples']:,} test, "
                     f"{r['train_examples']:,} train); peak {_mib(b['run'])}", "", ""])
        peaks.append(("(b)", b["run"]))

        ratios = []
        for mode in modes:
            root = os.path.join(tmp, f"demo-{mode}")
            c = run_demo(root, mode, smoke)
            d = run_demo(root, mode, smoke)
            d2 = run_demo(root, mode, smoke)
            rows.append([f"(c) `make demo`, fresh root, {mode}",
                         f"{c['run'].wall:.1f} s; accuracy {c['accuracy']:.4f} (Evaluator, 2k); "
                         f"peak {_mib(c['run'])}; terminal: "
                         f"{len(c['run'].stdout.splitlines())} lines on stdout, "
                         f"{len(c['run'].stderr.splitlines())} on stderr", "", ""])
            terminals.append((mode, c["run"].stdout))
            _component_rows(rows, "(c)", c["components"])
            rows.append([f"(d) again, same root, {mode}",
                         f"{d['run'].wall:.1f} s; {_ran_and_cached(d['components'])}; "
                         f"peak {_mib(d['run'])}", "", ""])
            rows.append([f"(d2) a third time, {mode}",
                         f"{d2['run'].wall:.1f} s; {_ran_and_cached(d2['components'])}; "
                         f"peak {_mib(d2['run'])}", "", ""])
            ratios.append((mode, c, d, d2))
            peaks += [(f"(c) {mode}", c["run"]), (f"(d) {mode}", d["run"]),
                      (f"(d2) {mode}", d2["run"])]

    help_s = cli_seconds(["--help"], 1 if smoke else 5)
    list_s = cli_seconds(["list"], 1 if smoke else 5)

    for mode, c, d, d2 in ratios:
        ca = c["run"].wall / a["run"].wall
        cb = c["run"].wall / b["run"].wall
        _target(rows, f"(c)/(a) wall, {mode}", ca,
                f"{ca:.2f} ({c['run'].wall:.0f} s / {a['run'].wall:.0f} s)", "<= 0.75",
                lambda v: v <= 0.75)
        _target(rows, f"(c)/(b) wall, {mode}", cb,
                f"{cb:.2f} ({c['run'].wall:.0f} s / {b['run'].wall:.0f} s)", "<= 1.6",
                lambda v: v <= 1.6)
        _target(rows, f"(d) re-run wall, {mode}", d["run"].wall, f"{d['run'].wall:.1f} s",
                "< 15 s", lambda v: v < 15)
        _target(rows, f"(d2) re-run wall, all cached, {mode}", d2["run"].wall,
                f"{d2['run'].wall:.1f} s", "< 15 s", lambda v: v < 15)
    _target(rows, "`model-garden --help` (median of " + ("1" if smoke else "5") + ")", help_s,
            f"{help_s:.2f} s", "< 1 s", lambda v: v < 1)
    _target(rows, "`model-garden list` (median of " + ("1" if smoke else "5") + ")", list_s,
            f"{list_s:.2f} s", "< 1 s", lambda v: v < 1)
    for label, m in peaks:
        _target(rows, f"peak memory of one process, {label}", m.peak_mib,
                f"{m.peak_mib:,.0f} MiB (wait4 {m.waited_mib:,.0f}, psutil-sampled "
                f"{m.sampled_mib:,.0f})",
                f"< {PEAK_TARGET_MIB:,} MiB", lambda v: v < PEAK_TARGET_MIB)

    title = "### The local run against its peers"
    if smoke:
        title += " — SMOKE TEST (50 train steps, --threshold 0.5): not for reporting"
    load = lambda l: "/".join(f"{x:.1f}" for x in l)  # noqa: E731
    return (f"{title}\n\n{os.cpu_count()} cores; load average (1/5/15 min) {load(load_before)} "
            f"at the start, {load(os.getloadavg())} at the end\n\n"
            + markdown_table(["what", "measured", "target", "verdict"], rows)
            + "".join(f"\n\n(c)'s terminal, {mode} (stdout; not a terminal, so one line per "
                      f"finished component):\n\n```\n{out}```" for mode, out in terminals))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m benchmarks.local_run [--modes ...] [--smoke]``."""
    import argparse

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--modes", default=DEFAULT_MODE)
    parser.add_argument("--smoke", action="store_true", help="SMOKE TESTS ONLY (docstring)")
    args = parser.parse_args(argv)
    print(run(args.modes.split(","), args.smoke), flush=True)


if __name__ == "__main__":
    main()
