"""End to end (issue 13 item 5): an unknown census category stops the pipeline, or is listed.

A copy of the real UCI Adult files whose adult.data has one value changed:
the first row's workclass ``State-gov`` becomes ``Space-force``, a category
the curated schema does not list. ``model-garden run census_wide`` on it:

1. ``--on-anomalies fail`` (BeamDagRunner): the AnomaliesGate fails with the
   anomaly listed; no Transform, Trainer, Evaluator or Pusher execution;
   nothing pushed;
2. the same with ``--runner local`` (LocalDagRunner);
3. ``--on-anomalies warn``: the summary lists the anomaly, and Transform,
   Trainer, Evaluator and Pusher run (``--threshold 0`` so the tiny model
   is blessed and pushed: the run went all the way).

Training is 10 steps: what is under test is the gate, not the model.
"""

import os
import subprocess
import sys

import pytest

from model_garden.pipelines import report

pytestmark = pytest.mark.slow

SPACE_FORCE = ("train: workclass: ENUM_TYPE_UNEXPECTED_STRING_VALUES (Unexpected string "
               "values): Examples contain values missing from the schema: Space-force (<1%).")
SUMMARY_LINE = ("  train  workclass  ENUM_TYPE_UNEXPECTED_STRING_VALUES  Unexpected string values: "
                "Examples contain values missing from the schema: Space-force (<1%).")
COMMON = ["--train-steps", "10", "--eval-steps", "5", "--threshold", "0",
          "--direct-running-mode", "in_memory"]
AFTER_THE_GATE = {"Transform", "Trainer", "Evaluator", "Pusher"}


@pytest.fixture(scope="module")
def space_force_census(tmp_path_factory, data_root):
    """The census folder with adult.data's first workclass 'Space-force' (adult.test as is)."""
    folder = tmp_path_factory.mktemp("census") / "census"
    folder.mkdir()
    source = os.path.join(data_root, "census")
    with open(os.path.join(source, "adult.data")) as f:
        lines = f.read().split("\n")
    assert lines[0].startswith("39, State-gov, 77516, ")
    lines[0] = lines[0].replace(", State-gov, ", ", Space-force, ", 1)
    (folder / "adult.data").write_text("\n".join(lines))
    with open(os.path.join(source, "adult.test")) as f:
        (folder / "adult.test").write_text(f.read())
    return str(folder)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("anomalies-e2e")


def _run(root, data_dir, *flags):
    cmd = [sys.executable, "-m", "model_garden.cli", "run", "census_wide", "--data-dir", data_dir,
           "--output-root", str(root), *COMMON, *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


def _executions(root):
    return {r.node_id: r for r in
            report.component_runs(os.path.join(root, "census_wide", "metadata.sqlite"))}


def _serving(root):
    folder = os.path.join(root, "serving", "census_wide")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.mark.parametrize("runner", ["beam", "local"])
def test_fail_stops_before_transform_with_the_anomaly_listed(root, space_force_census, runner):
    proc = _run(root, space_force_census, "--on-anomalies", "fail", "--runner", runner)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-5000:]
    error = proc.stderr[proc.stderr.index("Error: the census_wide pipeline failed"):]
    assert ("AnomaliesFound: 1 anomaly against the curated schema, stopped before Transform "
            "(on_anomalies=fail; fix the data or the schema, or set on_anomalies=warn to train "
            f"on it anyway): {SPACE_FORCE}") in error
    runs = _executions(root)
    assert runs["ExampleValidator"].blessed is False
    assert runs["AnomaliesGate"].state == "FAILED"
    assert not AFTER_THE_GATE & set(runs), runs
    assert _serving(root) == []


def test_warn_lists_the_anomaly_and_goes_on(root, space_force_census):
    proc = _run(root, space_force_census, "--on-anomalies", "warn")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    lines = proc.stdout.splitlines()
    at = lines.index("anomalies against the curated schema: 1 "
                     "(on_anomalies=warn: the pipeline went on)")
    assert lines[at + 1] == SUMMARY_LINE
    runs = _executions(root)
    assert runs["AnomaliesGate"].state == "COMPLETE"
    assert {n: runs[n].state for n in AFTER_THE_GATE} == {n: "COMPLETE" for n in AFTER_THE_GATE}
    (version,) = _serving(root)
    assert f"pushed: {os.path.join(root, 'serving', 'census_wide', version)}" in proc.stdout
