"""model_garden.pipelines.run_log: a run's noise goes to its log file, the command's lines
to the terminal. Each case runs in a child process, so descriptors 1 and 2 are real
pipes as in a console run, and the noise comes from the real sources: Python's
logging (absl's handler), print, a C-level write to descriptor 2, a child process, TF's
C++ logger, and the interpreter's shutdown."""

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import logging, os, subprocess, sys
    from absl import logging as absl_logging
    from model_garden.pipelines import run_log

    class Noisy:
        def __del__(self):
            raise RuntimeError("noise at shutdown")

    log_path, stream, tf = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
    with run_log.captured(log_path, stream=stream, keep_after_exit=True) as term:
        term.out.write("result line\\n")
        print("print noise")
        logging.getLogger("apache_beam").warning("beam noise")
        absl_logging.info("absl info noise")
        os.write(2, b"fd2 noise\\n")
        subprocess.run(["sh", "-c", "echo child noise >&2; echo child stdout noise"])
        if tf:
            import tensorflow
        term.err.write("waiting line\\n")
    print("after the block")  # the command's own output after the capture
    keep = Noisy()  # raises in __del__ at shutdown: "Exception ignored in"
""")
NOISE = ["print noise", "beam noise", "absl info noise", "fd2 noise", "child noise",
         "child stdout noise"]


def _child(tmp_path, stream=False, tf=False):
    log_path = str(tmp_path / "logs" / "run.log")
    env = dict(os.environ, PYTHONPATH=os.getcwd(), TF_CPP_MIN_LOG_LEVEL="0")
    proc = subprocess.run([sys.executable, "-c", CHILD, log_path, "1" if stream else "0",
                           "1" if tf else "0"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(log_path) as f:
        return proc, f.read()


def test_quiet_the_terminal_gets_only_the_commands_lines(tmp_path):
    proc, log = _child(tmp_path)
    assert proc.stdout == "result line\nafter the block\n"
    assert proc.stderr == "waiting line\n"
    for noise in NOISE:
        assert noise in log, (noise, log)
    # Python's shutdown complaint went to the log, not the terminal.
    assert "Exception ignored in" in log and "noise at shutdown" in log


def test_verbose_streams_everything_to_stderr_and_still_logs_it(tmp_path):
    proc, log = _child(tmp_path, stream=True)
    assert proc.stdout == "result line\nafter the block\n"
    for noise in NOISE:
        assert noise in log and noise in proc.stderr, noise
    assert "waiting line" in proc.stderr and "waiting line" not in log


@pytest.mark.slow
def test_tensorflows_cxx_logger_goes_to_the_log(tmp_path):
    """Importing TF inside the block: its C++ records (``I tensorflow/...``) are logged."""
    proc, log = _child(tmp_path, tf=True)
    assert proc.stdout == "result line\nafter the block\n" and proc.stderr == "waiting line\n"
    assert "tensorflow/" in log, log[-3000:]


def test_an_unwritable_log_folder_is_an_oserror_naming_it(tmp_path):
    from model_garden.pipelines import run_log

    blocker = tmp_path / "logs"
    blocker.write_text("a file where the logs folder goes")
    with pytest.raises(OSError) as raised:
        with run_log.captured(str(blocker / "run.log")):
            pass
    assert str(blocker) in str(raised.value)
