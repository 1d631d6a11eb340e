"""The live progress display of ``model-garden run``: one line per component.

The source of truth is the run's ML Metadata store, read every half second
(read-only SQLite, beside the runner's writes): a component without an
execution in this run is ``waiting``; ``RUNNING`` shows its elapsed time;
``COMPLETE`` is ``done`` with its time, ``CACHED`` is ``cached``, ``FAILED``
is ``failed``. On an interactive terminal it is a ``rich`` live table
redrawn in place; otherwise (a pipe, CI) one line per component as it ends.
"""

import os
import threading
import time
from typing import IO, Dict, List, Optional, Sequence

from model_garden.pipelines import report

POLL_SECONDS = 0.5
_WORDS = {"COMPLETE": "done", "CACHED": "cached", "FAILED": "failed", "CANCELED": "canceled",
          "RUNNING": "running", "NEW": "running"}
_STYLES = {"done": "green", "cached": "cyan", "failed": "bold red", "running": "yellow",
           "waiting": "dim", "canceled": "red"}


def component_states(metadata_path: str, run_id: str,
                     store=None) -> Dict[str, report.ComponentRun]:
    """This run's executions by component id (``{}`` before the run is recorded).

    Args:
      store: an open read-only store of ``metadata_path`` to reuse.

    Raises:
      Exception: from ML Metadata, e.g. while the runner is still creating
        the store (the caller keeps what it showed last).
    """
    if store is None and not os.path.exists(metadata_path):
        return {}
    store = store or report.open_store(metadata_path)
    if run_id not in report.pipeline_runs(metadata_path, store):
        return {}
    return {r.node_id: r for r in report.component_runs(metadata_path, run_id, store)}


def failed_components(metadata_path: str, run_id: str) -> List[report.ComponentRun]:
    """This run's ``FAILED`` executions (``[]`` when none was recorded)."""
    try:
        rows = component_states(metadata_path, run_id)
    except Exception:  # noqa: BLE001 - no readable store: nothing recorded
        return []
    return [r for r in rows.values() if r.state == "FAILED"]


def describe(row: Optional[report.ComponentRun], now_ms: float) -> tuple:
    """``(word, seconds or None)`` of one component: waiting, running, done, cached, failed."""
    if row is None:
        return "waiting", None
    word = _WORDS.get(row.state, row.state.lower())
    if word == "running":
        return word, max(0.0, (now_ms - row.started_ms) / 1000.0)
    if word == "cached":
        return word, None
    return word, row.seconds


class Progress:
    """Polls ML Metadata in a thread and shows each component's state on ``out``.

    Args:
      metadata_path: the run's ``metadata.sqlite`` (may not exist yet).
      run_id: this run's pipeline run id.
      components: component ids in the pipeline's (topological) order.
      out: the terminal's text stream.
      live: redraw a table in place (an interactive terminal); else print
        one line per component when it ends.
    """

    def __init__(self, metadata_path: str, run_id: str, components: Sequence[str], out: IO[str],
                 live: bool):
        self._metadata_path, self._run_id = metadata_path, run_id
        self._components: List[str] = list(components)
        self._out, self._live = out, live
        self._printed: set = set()
        self._rows: Dict[str, report.ComponentRun] = {}
        self._store = None  # opened once the runner has created the file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-progress", daemon=True)
        self._rich_live = None
        self._width = max([len(c) for c in self._components] + [9])

    def __enter__(self) -> "Progress":
        if self._live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self._out, force_terminal=True)
            self._rich_live = Live(self._table({}), console=console, refresh_per_second=4,
                                   transient=False)
            self._rich_live.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._update(final=True)
        if self._rich_live is not None:
            self._rich_live.stop()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._update()

    def _update(self, final: bool = False) -> None:
        try:
            if self._store is None and os.path.exists(self._metadata_path):
                self._store = report.open_store(self._metadata_path)
            if self._store is not None:
                self._rows = component_states(self._metadata_path, self._run_id, self._store)
        except Exception:  # noqa: BLE001 - a busy or half-created store: keep the last view
            if not final:
                return
        rows = self._rows
        for node in rows:  # a component the pipeline did not list up front
            if node not in self._components:
                self._components.append(node)
        if self._rich_live is not None:
            self._rich_live.update(self._table(rows), refresh=True)
            return
        now = time.time() * 1000
        for node in self._components:
            word, seconds = describe(rows.get(node), now)
            if node in self._printed or word in ("waiting", "running"):
                continue
            self._printed.add(node)
            self._out.write(self.line(node, word, seconds) + "\n")
            self._out.flush()

    def line(self, node: str, word: str, seconds: Optional[float]) -> str:
        """One component's line: ``ExampleGen     done      25.7 s``."""
        time_text = "" if seconds is None else f"{seconds:7.1f} s"
        return f"  {node:<{self._width}}  {word:<8}{time_text}".rstrip()

    def _table(self, rows: Dict[str, report.ComponentRun]):
        from rich.table import Table
        from rich.text import Text

        now = time.time() * 1000
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 2))
        for node in self._components:
            word, seconds = describe(rows.get(node), now)
            table.add_row(node, Text(word, style=_STYLES.get(word, "")),
                          "" if seconds is None else f"{seconds:6.1f} s")
        return table
