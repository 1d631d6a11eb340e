"""End to end (issue 13 items 1 and 6): MNIST runs that race for one output root, and one
killed in its Trainer, on the real digits.

One module-scoped output root:
1. run A starts; once its Trainer is running, run B is started on the same
   root (it must wait: A holds the lock), then A is killed with SIGKILL
   (its whole process group), as an OOM kill or a closed terminal would;
2. B takes the lock, finds A's Trainer execution ``RUNNING``, marks it
   abandoned and removes its half-written ``model``/``model_run`` folders,
   takes ExampleGen ... Transform from the cache (A completed them), trains,
   is judged without a baseline (nothing was pushed) and pushes;
3. run C, with other training steps, is judged against B's pushed model.
Each prints its own run id and only its own run's components.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from model_garden.pipelines import recovery, report

pytestmark = pytest.mark.slow

COMMON = ["--split", "hash:80/20", "--eval-steps", "20", "--threshold", "0.5",
          "--direct-running-mode", "in_memory"]


def _cmd(root, *args):
    return [sys.executable, "-m", "model_garden.cli", "run", "mnist", "--output-root",
            str(root), *COMMON, *args]


def _metadata(root):
    return os.path.join(root, "mnist", "metadata.sqlite")


def _running_trainer(root, deadline):
    """Waits until run A's Trainer execution is RUNNING; returns (run id, execution id)."""
    while time.monotonic() < deadline:
        if os.path.exists(_metadata(root)):
            try:
                [run] = report.pipeline_runs(_metadata(root))
                rows = [r for r in report.component_runs(_metadata(root), run)
                        if r.node_id == "Trainer" and r.state == "RUNNING"]
            except Exception:  # noqa: BLE001 - the store is being created by run A
                rows = []
            if rows:
                return run, rows[0].execution_id
        time.sleep(1)
    pytest.fail("run A's Trainer never started")


def _collect(stream, lines):
    for line in stream:
        lines.append(line)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("race")
    a = subprocess.Popen(_cmd(root, "--train-steps", "3000"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        run_a, trainer_a = _running_trainer(root, time.monotonic() + 900)
        b = subprocess.Popen(_cmd(root, "--train-steps", "300"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        b_out, b_err = [], []
        readers = [threading.Thread(target=_collect, args=(b.stdout, b_out), daemon=True),
                   threading.Thread(target=_collect, args=(b.stderr, b_err), daemon=True)]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + 600  # B is past its imports and waiting for A
        while not any("waiting for run" in line for line in b_err):
            assert b.poll() is None and time.monotonic() < deadline, "".join(b_err)[-3000:]
            time.sleep(1)
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
    assert b.wait(timeout=1500) == 0, "".join(b_out)[-3000:] + "".join(b_err)[-6000:]
    for reader in readers:
        reader.join()
    # C may push too (it is judged against B, not refused), so B's push is read now.
    served_after_b = sorted(os.listdir(os.path.join(root, "serving", "mnist")))
    c = subprocess.run(_cmd(root, "--train-steps", "200", "--no-wait"), capture_output=True,
                       text=True, timeout=1500)
    assert c.returncode == 0, c.stdout[-3000:] + c.stderr[-6000:]
    return {"root": root, "run_a": run_a, "trainer_a": trainer_a,
            "b": ("".join(b_out), "".join(b_err)), "served_after_b": served_after_b,
            "c": (c.stdout, c.stderr)}


def _own_run(stdout):
    [line] = [line for line in stdout.splitlines() if line.startswith("run ")]
    return line.split(" ", 1)[1]


def test_the_second_run_waited_for_the_first(runs):
    _, err = runs["b"]
    assert f"waiting for run {runs['run_a']} (pid" in err, err[-3000:]


def test_the_killed_trainer_is_abandoned_and_its_partial_outputs_removed(runs):
    root, trainer = runs["root"], runs["trainer_a"]
    out, err = runs["b"]
    run_b = _own_run(out)
    assert f"recovered from an interrupted run: Trainer (execution {trainer}) marked " \
           "abandoned" in err
    store = report.open_store(_metadata(root))
    [execution] = store.get_executions_by_id([trainer])
    assert execution.custom_properties[recovery.ABANDONED_BY].string_value == run_b
    states = {r.node_id: r.state for r in report.component_runs(_metadata(root), runs["run_a"])}
    assert states["Trainer"] == "CANCELED" and states["Transform"] == "COMPLETE"
    assert "Evaluator" not in states  # A never got there
    for key in ("model", "model_run"):
        assert not os.path.exists(os.path.join(root, "mnist", "pipeline", "Trainer", key,
                                               str(trainer)))
    # Nothing is left RUNNING in ML Metadata, no partial output, no partial push.
    assert recovery.integrity_problems(_metadata(root), os.path.join(root, "mnist", "pipeline"),
                                       os.path.join(root, "serving", "mnist")) == []


def test_each_run_reports_its_own_components_and_the_second_pushes(runs):
    root = runs["root"]
    out_b, _ = runs["b"]
    run_b = _own_run(out_b)
    assert run_b != runs["run_a"]
    states = {r.node_id: r.state for r in report.component_runs(_metadata(root), run_b)}
    for node in ("ExampleGen", "StatisticsGen", "Transform"):
        assert states[node] == "CACHED", states  # completed by A before it was killed
    assert states["Trainer"] == "COMPLETE" and states["Pusher"] == "COMPLETE"
    [version] = runs["served_after_b"]
    assert f"pushed: {os.path.join(root, 'serving', 'mnist', version)}" in out_b
    assert "Trainer" in out_b and "CANCELED" not in out_b  # not A's rows


def test_the_third_run_is_judged_against_the_pushed_model(runs):
    root = runs["root"]
    out_c, _ = runs["c"]
    run_c = _own_run(out_c)
    rows = {r.node_id: r for r in report.component_runs(_metadata(root), run_c)}
    assert rows["Trainer"].state == "COMPLETE"  # other steps: trained again
    store = report.open_store(_metadata(root))
    events = store.get_events_by_execution_ids([rows["LatestBlessedModel"].execution_id])
    [baseline] = store.get_artifacts_by_id([e.artifact_id for e in events
                                            if e.type == e.OUTPUT])
    from model_garden.components.latest_blessed_model import SERVING_MODEL_DIR

    # The Evaluator had B's pushed model as its baseline.
    assert os.path.isfile(os.path.join(baseline.uri, SERVING_MODEL_DIR, "saved_model.pb"))
