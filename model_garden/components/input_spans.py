"""Which input data a run trains on: spans, a rolling window of them, and their fingerprint.

New data arrives as spans, TFX's ``{SPAN}`` convention (the ExampleGen guide,
"Span, Version and Split")::

    <input_base>/span-1/...      the first delivery (a complete raw dataset layout)
    <input_base>/span-2/...      the next one
    ...

A run reads the latest span, or with ``--spans K`` the last K spans present
(a rolling window); without ``--spans`` the whole ``input_base`` is one
dataset (no span folders, span 0). Each span folder has the dataset's own
layout (the MNIST idx files, ``adult.data``/``adult.test``, CIFAR-10 batches).

The :class:`SpanWindow` also carries a fingerprint of every file it covers
(path, size and modification time, never the contents: as cheap as a
listing). It is ExampleGen's ``input_spans`` execution property, so
ExampleGen's cache key changes exactly when its input data changes:

* locally (BeamDagRunner, LocalDagRunner) it is resolved when the pipeline is
  built, right before the run, as TFX's own ``FileBasedDriver`` does before
  its cache lookup;
* on Kubeflow Pipelines it is resolved at run time by the never-cached
  :class:`InputSpans` step, whose output parameter is ExampleGen's input
  parameter: KFP's cache key holds input parameter values (kubeflow/pipelines
  ``backend/src/v2/cacheutils/cache.go``, ``GenerateCacheKey``), so an
  unchanged window is served from cache and a new span runs ExampleGen and
  everything downstream. This replaces ``lifecycle.preCacheCheck`` (TFX's
  ``file_based_example_gen.driver``), which only Vertex AI runs.
"""

import dataclasses
import hashlib
import json
import posixpath
import logging
import re
from typing import Any, Dict, List, Optional, Tuple

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import component_spec, standard_artifacts

#: Span folder names: ``span-<N>``, N a whole number (TFX's ``{SPAN}`` is ``\\d+``).
SPAN_DIR = re.compile(r"^span-(\d+)$")
SPAN_DIR_FORMAT = "span-{}"
#: ExampleGen's execution property holding :meth:`SpanWindow.to_json`.
INPUT_SPANS_KEY = "input_spans"


class InputSpansError(ValueError):
    """The input folder has no data, no span folders, or a bad window size."""


@dataclasses.dataclass(frozen=True)
class SpanWindow:
    """The spans one run reads, and what they held when resolved.

    Attributes:
      input_base: the folder of the raw data (local or ``gs://``).
      spans: span numbers read, ascending; ``()`` without the span layout.
      files: files covered (all the window's files).
      fingerprint: sha256 (hex) over every file's relative path, size in bytes
        and modification time in ns.
    """

    input_base: str
    spans: Tuple[int, ...]
    files: int
    fingerprint: str

    @property
    def latest_span(self) -> int:
        """The newest span read (0 without the span layout): the Examples' ``span``."""
        return self.spans[-1] if self.spans else 0

    def folders(self) -> List[str]:
        """The folders to read, one per span (``[input_base]`` without spans)."""
        if not self.spans:
            return [self.input_base]
        return [posixpath.join(self.input_base, SPAN_DIR_FORMAT.format(n)) for n in self.spans]

    def to_json(self) -> str:
        """The ``input_spans`` execution property (compact, key-sorted JSON)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "SpanWindow":
        """Inverse of :meth:`to_json`.

        Raises:
          InputSpansError: not the JSON of a window.
        """
        try:
            value = json.loads(text)
            return cls(value["input_base"], tuple(int(n) for n in value["spans"]),
                       int(value["files"]), str(value["fingerprint"]))
        except (TypeError, ValueError, KeyError) as e:
            raise InputSpansError(f"bad {INPUT_SPANS_KEY} value {text!r}: {e}") from e


def list_spans(input_base: str) -> List[int]:
    """The span numbers of the ``span-N`` folders under ``input_base``, ascending.

    Raises:
      InputSpansError: ``input_base`` does not exist.
    """
    if not fileio.isdir(input_base):
        raise InputSpansError(f"{input_base}: the input folder does not exist")
    spans = []
    for name in fileio.listdir(input_base):
        m = SPAN_DIR.match(name.rstrip("/"))
        if m and fileio.isdir(posixpath.join(input_base, name.rstrip("/"))):
            spans.append(int(m.group(1)))
    return sorted(spans)


def _fingerprint(folders: List[str], input_base: str) -> Tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    for folder in folders:
        entries = []
        for root, _, names in fileio.walk(folder):
            root = root.decode() if isinstance(root, bytes) else root
            for name in names:
                name = name.decode() if isinstance(name, bytes) else name
                if name.startswith("."):
                    continue  # editor/OS droppings, partial uploads (.tmp)
                entries.append(posixpath.join(root, name))
        for path in sorted(entries):
            stat = fileio.stat(path)
            rel = posixpath.relpath(path, input_base)
            digest.update(f"{rel}\0{stat.length}\0{stat.mtime_nsec}\n".encode())
            count += 1
    return count, digest.hexdigest()


def resolve_spans(input_base: str, spans: Optional[int] = None) -> SpanWindow:
    """The window of spans a run reads now, with its fingerprint.

    Args:
      input_base: the raw data folder (local or ``gs://``).
      spans: ``None``: no span layout, all of ``input_base``; K >= 1: the last
        K ``span-N`` folders present (fewer when fewer exist).

    Returns:
      A :class:`SpanWindow`.

    Raises:
      InputSpansError: ``spans`` < 1; no ``span-N`` folder (span layout); no
        file at all in the window. Each message names the folder.
    """
    input_base = input_base.rstrip("/") or "/"
    if spans is None:
        window: Tuple[int, ...] = ()
        if not fileio.isdir(input_base):
            raise InputSpansError(f"{input_base}: the input folder does not exist")
    else:
        if isinstance(spans, bool) or not isinstance(spans, int) or spans < 1:
            raise InputSpansError(f"--spans must be a whole number >= 1, not {spans!r}")
        present = list_spans(input_base)
        if not present:
            raise InputSpansError(
                f"{input_base}: no span folders (span-1, span-2, ...); new data must "
                "arrive as <input_base>/span-N/, or drop --spans to read the folder as is")
        window = tuple(present[-spans:])
    probe = SpanWindow(input_base, window, 0, "")
    count, fingerprint = _fingerprint(probe.folders(), input_base)
    if not count:
        raise InputSpansError(f"{', '.join(probe.folders())}: no input files")
    return SpanWindow(input_base, window, count, fingerprint)


# --- the Kubeflow step ---------------------------------------------------------------

#: The step's node id (its KFP task name).
COMPONENT_ID = "InputSpans"
#: Execution property of :class:`InputSpans` with the window size (0: no span layout).
SPANS_KEY = "spans"


class InputSpansSpec(component_spec.ComponentSpec):
    """``input_base`` and ``spans`` in; ``input_spans`` (a ``String``) out."""

    PARAMETERS = {
        "input_base": component_spec.ExecutionParameter(type=str),
        SPANS_KEY: component_spec.ExecutionParameter(type=int),
    }
    INPUTS: Dict[str, Any] = {}
    OUTPUTS = {INPUT_SPANS_KEY: component_spec.ChannelParameter(type=standard_artifacts.String)}


class Executor(base_executor.BaseExecutor):
    """Writes :func:`resolve_spans` of the inputs as the ``input_spans`` String."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        spans = int(exec_properties.get(SPANS_KEY) or 0)
        window = resolve_spans(exec_properties["input_base"], spans or None)
        (artifact,) = output_dict[INPUT_SPANS_KEY]
        artifact.value = window.to_json()
        logging.info("input spans %s, %d files, fingerprint %s",
                     list(window.spans) or "(no span layout)", window.files, window.fingerprint)


class InputSpans(base_component.BaseComponent):
    """The never-cached step resolving the spans and fingerprint for ExampleGen.

    Its output ``input_spans`` (a ``String`` value artifact) feeds ExampleGen's
    ``input_spans`` execution property as ``.future()[0].value``: on KFP an
    output parameter that ExampleGen reads as an input parameter (TFX's dynamic
    execution properties, ``tfx/orchestration/kubeflow/v2/step_builder.py``).
    The compiler turns its task's cache off.

    Args:
      input_base: the raw data folder as the cluster sees it (``gs://``).
      spans: the window size K, or ``None`` without the span layout.
    """

    SPEC_CLASS = InputSpansSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, input_base: str, spans: Optional[int] = None):
        super().__init__(spec=InputSpansSpec(
            input_base=input_base, spans=int(spans or 0),
            input_spans=types.Channel(type=standard_artifacts.String)))
