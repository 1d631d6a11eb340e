"""The compiled MNIST package, run for real by KFP's local orchestrator, every step in the image.

``scripts/kfp_local_run.py`` (kfp 2.17.3 in ``.kfp-venv``, ``make kfp-venv``)
runs the package with ``kfp.local`` and its ``DockerRunner`` on podman's
Docker API (``DOCKER_HOST``, default ``unix:///run/podman/podman.sock``;
``scripts/podman-setup.sh`` starts it); the pipeline image is built from the
current source first (``make image``, layer-cached: only the package layer
changes), unless ``MODEL_GARDEN_KFP_LOCAL_IMAGE`` names one to use as it is.
The data is the real MNIST test set of ``shared/data``: two spans of 2000
different digits each, under the pipeline root (DockerRunner mounts nothing
else).  Three runs on one pipeline root:

1. span-0: every task runs, the model is blessed and pushed;
2. unchanged data: ExampleGen ... Trainer are served from kfp.local's cache,
   nothing is trained; the never-cached steps look again;
3. span-1 lands: ExampleGen and everything downstream run again; the
   Evaluator's baseline is the model run 1 pushed; a new version is pushed
   exactly when the new model is blessed.

A missing ``.kfp-venv``, Docker API or image engine is an error, never a skip
(CI installs them).  About 13 minutes on 2 cores, almost all of it container
and TensorFlow start-up (kfp.local runs one task at a time).
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KFP_PYTHON = os.path.join(ROOT, ".kfp-venv", "bin", "python")
SCRIPT = os.path.join(ROOT, "scripts", "kfp_local_run.py")
DOCKER_HOST = os.environ.get("DOCKER_HOST") or "unix:///run/podman/podman.sock"
IMAGE = os.environ.get("MODEL_GARDEN_KFP_LOCAL_IMAGE") or "localhost/model-garden:kfp-local"
SPAN_SIZE = 2000  # digits per span: 1600 train / 400 test in the 80/20 hash split
TRAIN_STEPS, EVAL_STEPS, THRESHOLD = 20, 4, 0.5

ALL_TASKS = {"InputSpans", "LatestPushedVersion", "LatestBlessedModel", "ExampleGen",
             "CuratedSchema", "StatisticsGen", "InferredSchema", "ExampleValidator",
             "AnomaliesGate", "Transform", "Trainer", "Evaluator", "Pusher"}
NEVER_CACHED = {"InputSpans", "LatestPushedVersion"}
#: What depends on the input data only (not on what was pushed).
DATA_TASKS = {"ExampleGen", "StatisticsGen", "InferredSchema", "ExampleValidator",
              "AnomaliesGate", "Transform", "Trainer"}


def _env():
    env = dict(os.environ, DOCKER_HOST=DOCKER_HOST)
    env.setdefault("TF_USE_LEGACY_KERAS", "1")
    return env


def _preflight():
    if not os.path.exists(KFP_PYTHON):
        pytest.fail(f"{KFP_PYTHON} missing: `make kfp-venv` (kfp 2.17.3 for kfp.local)")
    probe = ("import kfp, docker; assert kfp.__version__ == '2.17.3', kfp.__version__; "
             "docker.from_env().ping(); print(kfp.__version__)")
    proc = subprocess.run([KFP_PYTHON, "-c", probe], env=_env(), capture_output=True,
                          text=True, timeout=120)
    if proc.returncode:
        pytest.fail(f"kfp.local or the Docker API at {DOCKER_HOST} unusable "
                    f"(`make kfp-venv`; `sudo bash scripts/podman-setup.sh`):\n{proc.stderr[-2000:]}")


def _build_image():
    if os.environ.get("MODEL_GARDEN_KFP_LOCAL_IMAGE"):
        return
    proc = subprocess.run(["make", "-C", ROOT, "image", f"IMAGE={IMAGE}"], env=_env(),
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        pytest.fail(f"make image IMAGE={IMAGE} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")


def _run(package, root, name, *extra):
    summary = os.path.join(os.path.dirname(root), f"{name}.json")
    proc = subprocess.run(
        [KFP_PYTHON, SCRIPT, "--package", package, "--pipeline-root", root,
         "--summary", summary, *extra],
        env=_env(), capture_output=True, text=True, timeout=1500)
    with open(os.path.join(os.path.dirname(root), f"{name}.log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    assert os.path.exists(summary), f"{name}: no summary\n{(proc.stdout + proc.stderr)[-6000:]}"
    with open(summary) as f:
        result = json.load(f)
    result["returncode"], result["log_tail"] = proc.returncode, (proc.stdout + proc.stderr)[-6000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    """The three runs' summaries (scripts/kfp_local_run.py's JSON), in order."""
    _preflight()
    _build_image()
    work = tmp_path_factory.mktemp("kfp_local")
    root, package = str(work / "root"), str(work / "pipeline.yaml")
    compiled = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "model-garden"), "compile", "mnist",
         "-o", package, "--image", IMAGE, "--pipeline-root", root, "--split", "hash",
         "--spans", "1", "--train-steps", str(TRAIN_STEPS), "--eval-steps", str(EVAL_STEPS),
         "--threshold", str(THRESHOLD)],
        env=_env(), capture_output=True, text=True, timeout=600)
    assert compiled.returncode == 0, compiled.stderr[-4000:]
    summaries = []
    for args in (("run1", "--add-span", mnist_dir, "--span-slice", f"0:{SPAN_SIZE}"),
                 ("run2",),
                 ("run3", "--add-span", mnist_dir, "--span-slice", f"{SPAN_SIZE}:{SPAN_SIZE}")):
        summary = _run(package, root, *args)
        # What the destination served right after this run (a later run may push).
        summary["served_versions"] = _served(summary["push_destination"])
        summaries.append(summary)
    return tuple(summaries)


def _states(summary):
    return {name: task.get("state") for name, task in summary["tasks"].items()}


def _output(summary, task, name):
    return summary["tasks"][task]["outputs"][name]


def _pushed(summary):
    metadata = _output(summary, "Pusher", "pushed_model")["metadata"]
    return metadata if metadata.get("pushed") == 1 else None


def _served(dest):
    if not os.path.isdir(dest):
        return []
    return sorted(v for v in os.listdir(dest)
                  if os.path.isfile(os.path.join(dest, v, "saved_model.pb")))


def _versions(summary):
    """The versions served right after the run of ``summary``."""
    return summary["served_versions"]


def _ok(summary):
    assert summary["state"] == "succeeded" and summary["returncode"] == 0, (
        f"failed: {summary['failed_tasks']} {summary['error']}\n{summary['log_tail']}")
    assert set(summary["tasks"]) == ALL_TASKS


def test_first_run_pushes_a_blessed_model(runs):
    first = runs[0]
    _ok(first)
    assert set(_states(first).values()) == {"succeeded"}, _states(first)
    baseline = _output(first, "LatestBlessedModel", "model")
    assert baseline["metadata"]["pushed_version"] == ""  # nothing pushed before
    examples = _output(first, "ExampleGen", "examples")
    assert json.loads(_output(first, "InputSpans", "input_spans"))  # resolved at run time
    assert examples["metadata"]["span"] == 0
    blessing = _output(first, "Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1
    pushed = _pushed(first)
    assert pushed, _output(first, "Pusher", "pushed_model")
    assert os.path.dirname(pushed["pushed_destination"]) == first["push_destination"]
    assert os.path.isfile(os.path.join(pushed["pushed_destination"], "saved_model.pb"))
    assert first["push_destination"].startswith(first["pipeline_root"])


def test_unchanged_data_is_served_from_cache(runs):
    first, second = runs[0], runs[1]
    _ok(second)
    states = _states(second)
    assert {t: states[t] for t in DATA_TASKS | {"CuratedSchema"}} == {
        t: "cached" for t in DATA_TASKS | {"CuratedSchema"}}, states
    assert {t: states[t] for t in NEVER_CACHED} == {t: "succeeded" for t in NEVER_CACHED}
    # nothing new trained: the Evaluator judged run 1's model
    trained = _output(first, "Trainer", "model")["uri"]
    assert _output(second, "Trainer", "model")["uri"] == trained
    assert second["tasks"]["Evaluator"]["inputs"]["artifacts"]["model"] == [trained]
    # the baseline step saw run 1's push
    version = os.path.basename(_pushed(first)["pushed_destination"])
    assert _output(second, "LatestPushedVersion", "pushed_version") == version
    assert _output(second, "LatestBlessedModel", "model")["metadata"]["pushed_version"] == version
    # the model already served is not pushed again
    assert _pushed(second) is None
    assert _versions(second) == [version]


def test_new_span_reruns_and_compares_against_the_first_model(runs):
    first, second, third = runs
    _ok(third)
    states = _states(third)
    assert {t: states[t] for t in DATA_TASKS | {"Evaluator", "Pusher"}} == {
        t: "succeeded" for t in DATA_TASKS | {"Evaluator", "Pusher"}}, states
    examples = _output(third, "ExampleGen", "examples")
    assert examples["metadata"]["span"] == 1
    assert examples["uri"] != _output(first, "ExampleGen", "examples")["uri"]
    assert _output(third, "Trainer", "model")["uri"] != _output(first, "Trainer", "model")["uri"]
    # the baseline: run 1's pushed model, copied by LatestBlessedModel
    first_version = os.path.basename(_pushed(first)["pushed_destination"])
    baseline = _output(third, "LatestBlessedModel", "model")
    assert baseline["metadata"]["pushed_version"] == first_version
    assert baseline["metadata"]["pushed_uri"] == _pushed(first)["pushed_destination"]
    assert _output(third, "Evaluator", "blessing")["metadata"]["baseline_model"] == baseline["uri"]
    evaluator_inputs = third["tasks"]["Evaluator"]["inputs"]["artifacts"]
    assert evaluator_inputs["baseline_model"] == [baseline["uri"]]
    assert evaluator_inputs["model"] == [_output(third, "Trainer", "model")["uri"]]
    # pushed exactly when blessed
    blessed = _output(third, "Evaluator", "blessing")["metadata"]["blessed"] == 1
    pushed = _pushed(third)
    if blessed:
        assert pushed and os.path.basename(pushed["pushed_destination"]) != first_version
        assert _versions(third) == sorted([first_version, os.path.basename(
            pushed["pushed_destination"])])
    else:
        assert pushed is None
        assert _versions(third) == [first_version]
