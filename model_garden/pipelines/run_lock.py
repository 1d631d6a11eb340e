"""One run at a time per output folder: an exclusive lock on ``<root>/<recipe>/``.

Two ``model-garden run`` commands on one output root and recipe would share
one ML Metadata store, one pipeline root and one push destination: both
would run every component, both would be judged against no baseline and
both would push. :func:`exclusive` serialises them: the second waits (or,
with ``wait=False``, is refused) until the first has finished.

The lock is ``fcntl.flock`` on ``<folder>/.run.lock`` (POSIX advisory
locks, ``flock(2)``): the kernel drops it when the holding process exits
for any reason, ``kill -9`` included, so a crashed run never leaves a stale
lock behind. The file also says who holds it (pid, run id, start time, as
JSON) for the waiting run's message; its content is informative only.
Local file systems only (``flock`` is not reliable over NFS).
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from typing import Callable, Iterator, Optional

LOCK_FILE = ".run.lock"


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a run lock, as written in the lock file.

    Attributes:
      pid: process id of the holding run.
      run_id: its pipeline run id (``""`` if unknown).
      started: when it took the lock, seconds since the epoch (0 if unknown).
    """

    pid: int
    run_id: str
    started: float

    def describe(self) -> str:
        """``run 20261207-051200.123456 (pid 812, since 05:12:00)``, or what is known."""
        if not self.pid:
            return "another run"
        since = time.strftime("%H:%M:%S", time.localtime(self.started)) if self.started else "?"
        run = f"run {self.run_id}" if self.run_id else "a run"
        return f"{run} (pid {self.pid}, since {since})"


class RunLockBusy(RuntimeError):
    """Another run holds the folder's lock and the caller would not wait.

    Attributes:
      folder: the locked folder.
      holder: who holds it.
    """

    def __init__(self, folder: str, holder: Holder):
        self.folder = folder
        self.holder = holder
        super().__init__(
            f"{folder} is in use by {holder.describe()}; wait for it to finish, or run "
            "again without --no-wait to queue behind it")


def read_holder(folder: str) -> Holder:
    """The holder written in ``folder``'s lock file (all zero/empty when unreadable)."""
    try:
        with open(os.path.join(folder, LOCK_FILE), encoding="utf-8") as f:
            data = json.load(f)
        return Holder(int(data["pid"]), str(data["run_id"]), float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Holder(0, "", 0.0)


@contextlib.contextmanager
def exclusive(folder: str, run_id: str = "", wait: bool = True,
              on_wait: Optional[Callable[[Holder], None]] = None) -> Iterator[None]:
    """Holds the exclusive run lock of ``folder`` (created if missing) for the ``with`` body.

    Args:
      folder: the folder one run at a time may use, e.g. ``<output root>/mnist``.
      run_id: this run's id, written into the lock file for whoever waits.
      wait: block until the lock is free (calling ``on_wait`` once first);
        ``False``: raise :class:`RunLockBusy` at once.
      on_wait: called with the current :class:`Holder` before blocking.

    Raises:
      RunLockBusy: the lock is held and ``wait`` is false.
      OSError: ``folder`` cannot be created or the lock file opened.
    """
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(folder)
            if not wait:
                raise RunLockBusy(folder, holder) from None
            if on_wait:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "run_id": run_id,
                                  "started": time.time()}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
