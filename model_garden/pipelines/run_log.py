"""A run's log file: everything TF, Beam, absl and the components write, off the terminal.

``model-garden run`` writes each run's log to
``<output root>/<recipe>/logs/<run id>.log``. Library noise comes from
places no Python logging setting reaches: TF's C++ logger (``Unable to
register cuDNN factory``), Beam worker processes (multi_processing mode
starts them with this process's stdout and stderr), ``Exception ignored in``
tracebacks printed by the interpreter, ``print`` in executors. So the
redirection is at the file-descriptor level: descriptors 1 and 2 (and
``sys.stdout``/``sys.stderr``) point at the log file, and the command writes
its own lines to a :class:`Terminal` holding the original streams.

With ``stream=True`` (``model-garden -v run``) a thread copies everything
written to 1 and 2 to the log file and to the terminal's stderr as well.
"""

import atexit
import contextlib
import dataclasses
import io
import logging
import os
import sys
import threading
from typing import IO, Iterator, Optional


@dataclasses.dataclass
class Terminal:
    """Where the command's own lines go while the log holds descriptors 1 and 2.

    Attributes:
      out: text stream for results (the original standard output).
      err: text stream for waiting/recovery messages and errors (the
        original standard error).
      log_path: the run's log file.
      verbose: whether the log is streamed to ``err`` too (``-v``).
    """

    out: IO[str]
    err: IO[str]
    log_path: str
    verbose: bool = False

    @property
    def is_live(self) -> bool:
        """Whether ``out`` is an interactive terminal (a live display can redraw it)."""
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())


def _terminal_stream(stream: IO[str], fd: int) -> IO[str]:
    """A stream on the terminal that ``stream`` writes to, safe from a later ``dup2`` of ``fd``.

    When ``stream`` writes to descriptor ``fd`` (a console run), a duplicate
    of that descriptor; otherwise (click's test runner, pytest capture),
    ``stream`` itself, which redirecting ``fd`` does not touch.
    """
    try:
        same = stream.fileno() == fd
    except (AttributeError, io.UnsupportedOperation, ValueError):
        same = False
    if not same:
        return stream
    return io.TextIOWrapper(os.fdopen(os.dup(fd), "wb", buffering=0),
                            encoding=getattr(stream, "encoding", None) or "utf-8",
                            errors="replace", line_buffering=True, write_through=True)


def _tee(read_fd: int, log_fd: int, terminal: IO[str]) -> None:
    """Copies what arrives on ``read_fd`` to ``log_fd`` and ``terminal`` until EOF."""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                return
            os.write(log_fd, chunk)
            try:
                terminal.write(chunk.decode("utf-8", errors="replace"))
                terminal.flush()
            except (OSError, ValueError):  # the terminal went away: keep logging
                pass


def _redirect_at_exit(log_path: str) -> None:
    """Sends descriptors 1 and 2 to ``log_path`` again for the interpreter's shutdown.

    Python prints ``Exception ignored in: <function AtomicFunction.__del__>``
    and similar while it tears TF down, after the command returned.
    """
    with contextlib.suppress(OSError, ValueError):
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


@contextlib.contextmanager
def captured(log_path: str, stream: bool = False,
             keep_after_exit: bool = False) -> Iterator[Terminal]:
    """Sends descriptors 1 and 2, ``sys.stdout`` and ``sys.stderr`` to ``log_path`` inside.

    The log is opened for appending (a re-run with the same run id, which
    does not happen, would not erase it); its folder is made. Python logging
    (absl's handler included) is set to INFO inside, so the log holds the
    components' records; the previous level comes back on exit.

    Args:
      log_path: the log file.
      stream: also copy everything to the terminal's stderr (``-v``).
      keep_after_exit: after the block, keep what the interpreter prints at
        shutdown off the terminal too (the console command, which exits
        right after; tests running commands in-process leave it False).

    Yields:
      the :class:`Terminal` for the command's own lines.

    Raises:
      OSError: the log file cannot be created (the path is in the error).
    """
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for s in (sys.stdout, sys.stderr):
        s.flush()
    terminal = Terminal(_terminal_stream(sys.stdout, 1), _terminal_stream(sys.stderr, 2),
                        log_path, stream)
    saved = [os.dup(1), os.dup(2)]
    saved_streams = sys.stdout, sys.stderr
    tee: Optional[threading.Thread] = None
    if stream:
        read_fd, write_fd = os.pipe()
        tee = threading.Thread(target=_tee, args=(read_fd, log_fd, terminal.err),
                               name="run-log-tee", daemon=True)
        tee.start()
        target = write_fd
    else:
        target = log_fd
    os.dup2(target, 1)
    os.dup2(target, 2)
    if stream:
        os.close(write_fd)
    log_stream = io.TextIOWrapper(os.fdopen(os.dup(2), "wb", buffering=0), encoding="utf-8",
                                  errors="replace", line_buffering=True, write_through=True)
    sys.stdout = sys.stderr = log_stream
    root = logging.getLogger()
    level = root.level
    handlers = _point_stream_handlers(saved_streams, log_stream)
    root.setLevel(logging.INFO)
    try:
        yield terminal
    finally:
        root.setLevel(level)
        for handler, old in handlers:
            handler.setStream(old)
        log_stream.flush()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        log_stream.close()
        if tee is not None:
            # The pipe's write end closed with 1, 2 and log_stream: the tee sees EOF,
            # unless a Beam worker still holds it (then the daemon thread is left).
            tee.join(timeout=5)
        os.close(log_fd)
        if keep_after_exit:
            atexit.register(_redirect_at_exit, log_path)


def discard(log_path: str) -> None:
    """Removes the log of a run that did not start, and its folder when left empty."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(log_path)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(log_path))  # only when empty


def _point_stream_handlers(streams, log_stream):
    """Points logging handlers that write to ``streams`` (absl's among them) at ``log_stream``.

    Handlers made before the redirection hold the stream object they were
    given; in a console run that object writes to descriptor 2 (already the
    log), but under click's test runner it is the runner's buffer.

    Returns:
      ``[(handler, previous stream)]`` to restore.
    """
    changed = []
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in ("absl",)]
    for logger in loggers:
        for handler in logger.handlers:
            for h in [handler, getattr(handler, "python_handler", None)]:
                if isinstance(h, logging.StreamHandler) and any(h.stream is s for s in streams):
                    changed.append((h, h.setStream(log_stream)))
    return changed
