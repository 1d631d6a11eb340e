"""Fault injection (``make bench-faults``, by hand): the MNIST recipe killed and starved.

Every case uses its own output root and its own copy of the real MNIST
files of ``shared/data`` (so their modification time can change), with
small step budgets (``--train-steps 100/120``, ``--eval-steps 10``,
``--threshold 0.5``, Beam ``in_memory``):

* **kill -9 at each component** (ExampleGen, StatisticsGen, Transform,
  Trainer, Evaluator, Pusher): run 1 completes and pushes version V1; the
  files are touched (a new fingerprint, so every component runs again) and
  run 2, with other training steps, is started and its whole process group
  is killed with SIGKILL once the component is at work: its output folder
  exists for 1 s (Pusher: the moment its staged copy appears in the push
  destination, mid-copy). Then run 3, the same command as run 2.
  Checked: run 3 succeeds and says it recovered the killed execution; the
  components that finished before the kill come from the TFX cache; V1 is
  byte for byte as it was after the kill and after run 3; every served
  version is complete; :func:`model_garden.pipelines.recovery.integrity_problems`
  finds nothing (no execution left ``RUNNING``, no partial output, no staged push).
* **full disk**: the output root is a small tmpfs (``mount -t tmpfs``, needs
  root); run 1 completes; a filler file leaves about 1 MiB free; run 2 fails;
  V1 is intact and the integrity check passes; the filler is removed and the
  tmpfs grown (room for another run), and run 3 completes, from the cache
  where run 2 got that far.
* **a concurrent second run** on the same root, started 1 s after the
  first: it waits for the lock, then runs against the first's pushed model;
  both succeed with their own run ids.

Prints one table; a case that does not hold says what failed.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from benchmarks.common import markdown_table
from model_garden.pipelines import recovery, report

COMPONENTS = ("ExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher")
ARGS = ["--split", "hash:80/20", "--eval-steps", "10", "--threshold", "0.5",
        "--direct-running-mode", "in_memory"]
FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz")
#: Output key of each component whose folder marks it at work (TFX makes them first).
OUTPUT_KEY = {"ExampleGen": "examples", "StatisticsGen": "statistics",
              "Transform": "transform_graph", "Trainer": "model_run",
              "Evaluator": "evaluation", "Pusher": "pushed_model"}
TMPFS_MIB = 400  # run 1 needs about 150 MiB
TMPFS_FREED_MIB = 1024  # after run 2: room for a whole run more


def _mnist_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.environ.get("MODEL_GARDEN_DATA") or os.path.join(here, "..", "..", "shared", "data")
    return os.path.join(os.path.abspath(root), "mnist")


def _copy_data(folder: str) -> str:
    os.makedirs(folder)
    for name in FILES:
        shutil.copy(os.path.join(_mnist_dir(), name), os.path.join(folder, name))
    return folder


def _touch(folder: str) -> None:
    later = time.time() + 5
    for name in FILES:
        os.utime(os.path.join(folder, name), (later, later))


def _cmd(root: str, data: str, steps: int, *extra: str) -> List[str]:
    return [sys.executable, "-m", "model_garden.cli", "run", "mnist", "--output-root", root,
            "--data-dir", data, "--train-steps", str(steps), *ARGS, *extra]


def _run(cmd: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def _paths(root: str) -> Dict[str, str]:
    return {"metadata": os.path.join(root, "mnist", "metadata.sqlite"),
            "pipeline": os.path.join(root, "mnist", "pipeline"),
            "serving": os.path.join(root, "serving", "mnist")}


def _digest(folder: str) -> str:
    digest = hashlib.sha256()
    for top, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(top, name)
            digest.update(os.path.relpath(path, folder).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _versions(serving: str) -> List[str]:
    return sorted((v for v in os.listdir(serving) if v.isdigit()), key=int) \
        if os.path.isdir(serving) else []


def _own_run(stdout: str) -> str:
    return next((line.split(" ", 1)[1] for line in stdout.splitlines()
                 if line.startswith("run ")), "")


def _at_work(root: str, component: str, known: set) -> bool:
    """Whether ``component`` of the new run is at work (see the module docstring)."""
    paths = _paths(root)
    if component == "Pusher" and os.path.isdir(paths["serving"]):
        if any(n.startswith(".push-") for n in os.listdir(paths["serving"])):
            return True
        return False
    folder = os.path.join(paths["pipeline"], component, OUTPUT_KEY[component])
    return os.path.isdir(folder) and bool(set(os.listdir(folder)) - known)


def _kill_at(cmd: List[str], root: str, component: str) -> Optional[float]:
    """Starts ``cmd``, SIGKILLs its process group when ``component`` is at work.

    Returns:
      seconds from the start to the kill, or ``None`` if the run ended first.
    """
    folder = os.path.join(_paths(root)["pipeline"], component, OUTPUT_KEY[component])
    known = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    start = time.monotonic()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        while child.poll() is None:
            if _at_work(root, component, known):
                if component != "Pusher":
                    time.sleep(1)
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                return time.monotonic() - start
            time.sleep(0.005 if component == "Pusher" else 0.05)
        return None
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _problems(root: str) -> List[str]:
    paths = _paths(root)
    problems = recovery.integrity_problems(paths["metadata"], paths["pipeline"],
                                           paths["serving"])
    return problems


def kill_case(component: str, workdir: str) -> List[str]:
    """One kill -9 case; returns the table row."""
    root, data = os.path.join(workdir, "out"), _copy_data(os.path.join(workdir, "mnist"))
    first = _run(_cmd(root, data, 100))
    if first.returncode:
        return [component, "-", "-", "-", "-", f"run 1 failed: {first.stderr[-300:]}"]
    serving = _paths(root)["serving"]
    [v1] = _versions(serving)
    v1_digest = _digest(os.path.join(serving, v1))
    _touch(data)
    killed_after = _kill_at(_cmd(root, data, 120), root, component)
    if killed_after is None:
        return [component, "run ended before the kill", "-", "-", "-", "not tried"]
    intact_after_kill = _digest(os.path.join(serving, v1)) == v1_digest
    third = _run(_cmd(root, data, 120))
    if third.returncode:
        return [component, f"{killed_after:.1f}", "-", "-", "-",
                f"re-run failed: {third.stderr.strip().splitlines()[-1][:200]}"]
    recovered = [line.split(": ", 1)[1].split(" (")[0] for line in third.stderr.splitlines()
                 if line.startswith("recovered from an interrupted run")]
    rows = report.component_runs(_paths(root)["metadata"], _own_run(third.stdout))
    cached = [r.node_id for r in rows if r.state == "CACHED"
              and r.node_id in COMPONENTS[:COMPONENTS.index(component)]]
    expected_cached = [c for c in COMPONENTS[:COMPONENTS.index(component)]
                       if c not in ("Evaluator", "Pusher")]  # these always run again
    served_ok = (intact_after_kill and _digest(os.path.join(serving, v1)) == v1_digest)
    versions = _versions(serving)
    pushed = "pushed v2" if len(versions) == 2 else "not pushed"
    problems = _problems(root)
    ok = (recovered == [component] and set(expected_cached) <= set(cached) and served_ok
          and not problems)
    return [component, f"{killed_after:.1f}", ", ".join(recovered) or "none",
            ", ".join(cached) or "none", f"V1 byte-identical: {served_ok}; {pushed}",
            "pass" if ok else "FAIL: " + "; ".join(problems[:3])]


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(("Error", "RuntimeError",
                                                                       "OSError"))]
    return (lines or stderr.strip().splitlines() or [""])[-1][:300]


def full_disk_case(workdir: str) -> List[str]:
    """The output root on a small tmpfs that fills up during run 2."""
    if os.geteuid() != 0:
        return ["full disk", "-", "-", "-", "-", "not tried: mounting a tmpfs needs root"]
    root, data = os.path.join(workdir, "out"), _copy_data(os.path.join(workdir, "mnist"))
    os.makedirs(root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m", "tmpfs", root],
                   check=True)
    try:
        first = _run(_cmd(root, data, 100))
        if first.returncode:
            return ["full disk", "-", "-", "-", "-",
                    f"run 1 failed on {TMPFS_MIB} MiB: {first.stderr.strip()[-200:]}"]
        serving = _paths(root)["serving"]
        [v1] = _versions(serving)
        v1_digest = _digest(os.path.join(serving, v1))
        stat = os.statvfs(root)
        filler = os.path.join(root, "filler")
        with open(filler, "wb") as f:
            f.truncate(0)
            left = stat.f_bavail * stat.f_frsize - (1 << 20)
            chunk = b"\0" * (1 << 20)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
        _touch(data)
        second = _run(_cmd(root, data, 120))
        failed_line = _last_error(second.stderr)[:160]
        failed_at = [r.node_id for r in report.component_runs(
            _paths(root)["metadata"], _own_run(second.stderr)) if r.state == "FAILED"] \
            if second.returncode else []
        intact = _digest(os.path.join(serving, v1)) == v1_digest
        problems = _problems(root)
        os.remove(filler)  # the disk is freed (and grown) by hand, then the same command again
        subprocess.run(["mount", "-o", f"remount,size={TMPFS_FREED_MIB}m", root], check=True)
        third = _run(_cmd(root, data, 120))
        rows = report.component_runs(_paths(root)["metadata"], _own_run(third.stdout)) \
            if third.returncode == 0 else []
        cached = [r.node_id for r in rows if r.state == "CACHED"]
        ok = (second.returncode == 1 and intact and not problems and third.returncode == 0
              and not _problems(root))
        return ["full disk (tmpfs, ~1 MiB left)", f"run 2 failed at {failed_at or '?'}",
                failed_line, ", ".join(cached) or "none",
                f"V1 byte-identical: {intact}", "pass" if ok else
                "FAIL: " + "; ".join(problems[:3] + [_last_error(third.stderr)])]
    finally:
        subprocess.run(["umount", root], check=False)


def concurrent_case(workdir: str) -> List[str]:
    """Two runs on one root, 1 s apart."""
    root, data = os.path.join(workdir, "out"), _copy_data(os.path.join(workdir, "mnist"))
    a = subprocess.Popen(_cmd(root, data, 100), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1)
    b = subprocess.Popen(_cmd(root, data, 120), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    a_out, _ = a.communicate(timeout=1800)
    b_out, b_err = b.communicate(timeout=1800)
    waited = "waiting for run" in b_err
    run_a, run_b = _own_run(a_out), _own_run(b_out)
    problems = _problems(root)
    ok = a.returncode == 0 and b.returncode == 0 and waited and run_a != run_b and not problems
    return ["concurrent second run", "-", f"second waited: {waited}",
            f"runs {run_a} / {run_b}", f"versions {_versions(_paths(root)['serving'])}",
            "pass" if ok else "FAIL: " + "; ".join(problems[:3] + [b_err[-200:]])]


def run(only=()) -> str:
    """Every case above (about 30-40 minutes on 2 cores), or those named in ``only``
    (component names, ``full_disk``, ``concurrent``); returns a markdown report."""
    rows = []
    start = time.monotonic()
    for component in COMPONENTS:
        if only and component not in only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"bench-faults-{component}-") as workdir:
            rows.append(kill_case(component, workdir))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    for name, case in (("full_disk", full_disk_case), ("concurrent", concurrent_case)):
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix="bench-faults-") as workdir:
            rows.append(case(workdir))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return ("### faults: kill -9, full disk and a concurrent run (MNIST recipe)\n\n"
            + markdown_table(["fault", "killed after s", "recovered", "cached on re-run",
                              "served model", "result"], rows)
            + f"\n\n{os.cpu_count()} cores, {time.monotonic() - start:.0f} s in all.")


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(run(tuple(sys.argv[1:])), flush=True)
