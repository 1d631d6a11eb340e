"""One run at a time per output folder, and what a killed run leaves (issue 13 items 1, 6).

The lock is held by real child processes (a second run is another
process); the killed run is a real TFX pipeline (tests/killable_pipeline.py,
TFX's LocalDagRunner with ML Metadata in SQLite) killed with SIGKILL while
its second component is half-way through writing its output. The MNIST
runs that race and are killed are in tests/test_run_lock_e2e.py (slow).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from model_garden.pipelines import recovery, report, run_lock

pytestmark = pytest.mark.timeout(240)

HERE = os.path.dirname(os.path.abspath(__file__))

_HOLD = """
import sys, time
from model_garden.pipelines import run_lock
with run_lock.exclusive(sys.argv[1], sys.argv[2]):
    print("LOCKED", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _holder(folder, run_id, seconds):
    """A child process holding ``folder``'s run lock for ``seconds`` (returns once it holds it)."""
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), run_id, str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "LOCKED"
    return child


def test_no_wait_refuses_and_names_the_run_holding_the_lock(tmp_path):
    folder = tmp_path / "mnist"
    child = _holder(folder, "20261207-010203.000004", 60)
    try:
        with pytest.raises(run_lock.RunLockBusy) as error:
            with run_lock.exclusive(str(folder), "mine", wait=False):
                pytest.fail("entered a held lock")
        assert error.value.holder.pid == child.pid
        message = str(error.value)
        assert str(folder) in message and "run 20261207-010203.000004" in message
        assert f"pid {child.pid}" in message and "--no-wait" in message
    finally:
        child.kill()
        child.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "mnist"
    child = _holder(folder, "killed", 60)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with run_lock.exclusive(str(folder), "next", wait=False):
        assert run_lock.read_holder(str(folder)).run_id == "next"
        assert run_lock.read_holder(str(folder)).pid == os.getpid()


def test_a_waiting_run_starts_when_the_first_ends(tmp_path):
    folder = tmp_path / "mnist"
    child = _holder(folder, "first", 2)
    start = time.monotonic()
    waited = []
    with run_lock.exclusive(str(folder), "second", on_wait=waited.append):
        assert time.monotonic() - start > 1.5  # in only once the first let go
        assert run_lock.read_holder(str(folder)).run_id == "second"
    assert child.wait(timeout=30) == 0
    assert [(h.pid, h.run_id) for h in waited] == [(child.pid, "first")]
    assert "run first (pid" in waited[0].describe()


@pytest.mark.parametrize("command", [["run", "mnist", "--split", "hash:80/20"],
                                     ["convert", "mnist"]])
def test_no_wait_is_one_error_line_and_writes_nothing(tmp_path, mnist_dir, command):
    out = tmp_path / "out"
    folder = out / ("mnist" if command[0] == "run" else os.path.join("data", "mnist"))
    child = _holder(folder, "20261207-010203.000004", 120)
    try:
        done = subprocess.run([sys.executable, "-m", "model_garden.cli", *command,
                               "--data-dir", mnist_dir, "--output-root", str(out), "--no-wait"],
                              capture_output=True, text=True, timeout=180)
    finally:
        child.kill()
        child.wait()
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{folder} is in use by run 20261207-010203.000004 (pid {child.pid}" in errors[0]
    assert sorted(os.listdir(folder)) == [run_lock.LOCK_FILE]  # no metadata, no pipeline root
    assert not (out / "serving").exists()


def _killed_half_way(root):
    """Runs tests/killable_pipeline.py until HalfDone has half-written its output, then
    SIGKILLs it; returns that output's folder."""
    env = {**os.environ, "KILLABLE_SLEEP": "1"}
    child = subprocess.Popen([sys.executable, os.path.join(HERE, "killable_pipeline.py"),
                              str(root), "killed-run"], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        for line in child.stdout:
            if line.startswith("HALF-WRITTEN "):
                return line.split(" ", 1)[1].strip()
        pytest.fail(f"the pipeline ended before HalfDone: exit {child.wait()}")
    finally:
        child.kill()
        child.wait()


def test_a_killed_runs_execution_is_abandoned_and_only_its_outputs_removed(tmp_path):
    root = tmp_path / "killable"
    metadata, pipeline_root = str(root / "metadata.sqlite"), str(root / "pipeline")
    partial = _killed_half_way(root)
    assert os.path.isfile(os.path.join(partial, "partial.txt"))
    states = {r.node_id: r.state for r in report.component_runs(metadata, "killed-run")}
    assert states == {"Published": "COMPLETE", "HalfDone": "RUNNING"}  # TFX leaves it so
    [published] = [r for r in report.component_runs(metadata, "killed-run")
                   if r.node_id == "Published"]
    published_file = os.path.join(pipeline_root, "Published", "examples",
                                  str(published.execution_id), "data.txt")
    assert open(published_file).read() == "published"

    # A push the Pusher staged in <serving>/.push-<execution id> (test_baseline_and_push.py
    # checks the staging) but never moved into place goes too; served versions stay.
    [running] = [r for r in report.component_runs(metadata, "killed-run") if r.state == "RUNNING"]
    serving = tmp_path / "serving"
    staged = serving / f".push-{running.execution_id}" / "1765000000"
    staged.mkdir(parents=True)
    (serving / "1764000000").mkdir()
    (serving / "1764000000" / "saved_model.pb").write_bytes(b"served")

    problems = recovery.integrity_problems(metadata, pipeline_root, str(serving))
    assert [p for p in problems if "is still RUNNING" in p] == [
        f"execution {running.execution_id} (HalfDone) is still RUNNING"]
    assert f"{partial}: output of a RUNNING execution" in problems
    assert f"{staged.parent}: a staged push left behind" in problems

    [abandoned] = recovery.abandon_unfinished(metadata, pipeline_root, str(serving), "next-run")
    assert abandoned.node_id == "HalfDone"
    assert str(staged.parent) in abandoned.removed
    assert os.listdir(serving) == ["1764000000"]
    assert (serving / "1764000000" / "saved_model.pb").read_bytes() == b"served"
    assert partial in abandoned.removed and not os.path.exists(partial)
    scratch = os.path.join(pipeline_root, "HalfDone", ".system", "executor_execution",
                           str(abandoned.execution_id))
    assert not os.path.exists(scratch)
    assert open(published_file).read() == "published"  # published outputs stay
    rows = {r.node_id: r for r in report.component_runs(metadata, "killed-run")}
    assert rows["HalfDone"].state == "CANCELED"
    store = report.open_store(metadata)
    [execution] = store.get_executions_by_id([abandoned.execution_id])
    assert execution.custom_properties[recovery.ABANDONED_BY].string_value == "next-run"
    assert recovery.abandon_unfinished(metadata, pipeline_root, str(serving), "again") == []
    assert recovery.integrity_problems(metadata, pipeline_root, str(serving)) == []

    # The next run: Published from TFX's cache, HalfDone afresh to the end.
    done = subprocess.run([sys.executable, os.path.join(HERE, "killable_pipeline.py"),
                           str(root), "next-run"], capture_output=True, text=True, timeout=200,
                          env={k: v for k, v in os.environ.items() if k != "KILLABLE_SLEEP"})
    assert done.returncode == 0, done.stderr[-3000:]
    states = {r.node_id: r.state for r in report.component_runs(metadata, "next-run")}
    assert states == {"Published": "CACHED", "HalfDone": "COMPLETE"}
    assert recovery.integrity_problems(metadata, pipeline_root, str(serving)) == []


def test_a_failed_run_abandons_what_it_left_running_before_letting_go(tmp_path):
    """BeamDagRunner stops its whole graph when one component fails: a component running
    beside it stays RUNNING with half-written outputs (seen in benchmarks/faults.py's full
    disk case: ExampleGen beside the baseline steps). ``exclusive_run`` cleans up when its
    body raises, recording the failed run itself as the one that abandoned them."""
    import types

    from model_garden.pipelines import runners

    root = tmp_path / "killable"
    options = types.SimpleNamespace(metadata_path=str(root / "metadata.sqlite"),
                                    pipeline_root=str(root / "pipeline"), serving_dir="")
    with pytest.raises(RuntimeError, match="a component failed"):
        with runners.exclusive_run(options, "failed-run") as found:
            assert found == []
            partial = _killed_half_way(root)  # this run's HalfDone, cut short
            raise RuntimeError("a component failed")
    assert not os.path.exists(partial)
    rows = {r.node_id: r for r in report.component_runs(options.metadata_path, "killed-run")}
    assert rows["HalfDone"].state == "CANCELED"
    [execution] = report.open_store(options.metadata_path).get_executions_by_id(
        [rows["HalfDone"].execution_id])
    assert execution.custom_properties[recovery.ABANDONED_BY].string_value == "failed-run"
    assert recovery.integrity_problems(options.metadata_path, options.pipeline_root, "") == []
