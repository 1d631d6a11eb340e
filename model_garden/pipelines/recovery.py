"""Leftovers of a killed local run: abandoned in ML Metadata, partial outputs removed.

A run killed mid-component (``kill -9``, an OOM kill, a closed laptop)
leaves its execution ``RUNNING`` in ML Metadata forever and its half-written
outputs on disk: ``Transform/transform_graph/<id>/.temp_path``,
``Trainer/model/<id>``, ``Trainer/model_run/<id>``, TFX's scratch folders
``<node>/.system/executor_execution/<id>`` and, for a stateful component,
``<node>/.system/stateful_working_dir/<uuid>``. TFX never looks at them
again (a new local run has a new pipeline-run context, so its launcher
registers new executions; ``tfx/orchestration/portable/launcher.py``
``_register_or_reuse_execution``), and nothing ever removes them.

:func:`abandon_unfinished` runs under the output folder's run lock
(:mod:`model_garden.pipelines.run_lock`), so every execution still ``NEW``
or ``RUNNING`` there belongs to a run that is gone. Each becomes
``CANCELED`` with the custom property ``abandoned_by_run`` (the run that
found it), its pending output artifacts ``ABANDONED``, and the folders
above are removed. TFX names an execution's output folder
``<pipeline root>/<node id>/<output key>/<execution id>``
(``tfx/orchestration/portable/outputs_utils.py``
``generate_output_artifacts``), so only that execution's folders go:
everything published by a completed execution, and the served models, stay
as they were. A push staged by :mod:`model_garden.components.pusher` but
never moved into place (``<serving dir>/.push-<execution id>``) goes too.
"""

import dataclasses
import os
import shutil
from typing import List

#: MLMD custom property that names the run which abandoned an execution.
ABANDONED_BY = "abandoned_by_run"
#: TFX's custom property naming an execution's stateful working folder
#: (``outputs_utils._STATEFUL_WORKING_DIR_INDEX``).
_STATEFUL_INDEX = "__stateful_working_dir_index__"


@dataclasses.dataclass(frozen=True)
class Abandoned:
    """One execution a killed run left behind.

    Attributes:
      node_id: the component, e.g. ``"Trainer"``.
      execution_id: its MLMD execution id.
      removed: the partial folders removed, absolute paths.
    """

    node_id: str
    execution_id: int
    removed: List[str]


def _node_ids(store) -> dict:
    """``{execution id: node id}`` from TFX's ``node`` contexts (``<pipeline>.<node id>``)."""
    node_of = {}
    for context in store.get_contexts_by_type("node"):
        for execution in store.get_executions_by_context(context.id):
            node_of[execution.id] = context.name.split(".", 1)[-1]
    return node_of


def _remove(path: str, removed: List[str]) -> None:
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
        removed.append(path)


def abandon_unfinished(metadata_path: str, pipeline_root: str, serving_dir: str,
                       run_id: str) -> List[Abandoned]:
    """Marks every unfinished execution abandoned and removes its partial outputs.

    Call it only while holding the run lock of the folder that holds
    ``metadata_path`` (no other run may be executing there).

    Args:
      metadata_path: the recipe's ``metadata.sqlite`` (nothing to do if missing).
      pipeline_root: the recipe's pipeline root (``<root>/<recipe>/pipeline``).
      serving_dir: the recipe's push destination (``""``: none).
      run_id: the run that found them, recorded in ``abandoned_by_run``.

    Returns:
      One :class:`Abandoned` per execution that was ``NEW`` or ``RUNNING``,
      in id order (empty when the last run ended normally).
    """
    if not os.path.isfile(metadata_path):
        return []
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE
    store = metadata_store.MetadataStore(config)
    unfinished = sorted((e for e in store.get_executions()
                         if e.last_known_state in (mlmd.Execution.NEW, mlmd.Execution.RUNNING)),
                        key=lambda e: e.id)
    node_of = _node_ids(store) if unfinished else {}
    found = []
    for execution in unfinished:
        node_id = node_of.get(execution.id, "")
        removed: List[str] = []
        events = store.get_events_by_execution_ids([execution.id])
        outputs = [e.artifact_id for e in events
                   if e.type in (mlmd.Event.OUTPUT, mlmd.Event.PENDING_OUTPUT)]
        pending = [a for a in store.get_artifacts_by_id(outputs) if a.state != mlmd.Artifact.LIVE]
        for artifact in pending:
            artifact.state = mlmd.Artifact.ABANDONED
            if artifact.uri:
                _remove(artifact.uri, removed)
        if node_id:
            node_dir = os.path.join(pipeline_root, node_id)
            if os.path.isdir(node_dir):
                for key in sorted(os.listdir(node_dir)):
                    if not key.startswith("."):
                        _remove(os.path.join(node_dir, key, str(execution.id)), removed)
            system = os.path.join(node_dir, ".system")
            _remove(os.path.join(system, "executor_execution", str(execution.id)), removed)
            if _STATEFUL_INDEX in execution.custom_properties:
                index = execution.custom_properties[_STATEFUL_INDEX].string_value
                if index:
                    _remove(os.path.join(system, "stateful_working_dir", index), removed)
        if serving_dir:
            _remove(os.path.join(serving_dir, f".push-{execution.id}"), removed)
        execution.last_known_state = mlmd.Execution.CANCELED
        execution.custom_properties[ABANDONED_BY].string_value = run_id
        if pending:
            store.put_artifacts(pending)
        store.put_executions([execution])
        found.append(Abandoned(node_id, execution.id, removed))
    return found


def describe(abandoned: List[Abandoned]) -> str:
    """One line per abandoned execution for the run's output (``""`` for none)."""
    return "\n".join(
        f"recovered from an interrupted run: {a.node_id or 'execution'} (execution "
        f"{a.execution_id}) marked abandoned, {len(a.removed)} partial output(s) removed"
        for a in abandoned)


def integrity_problems(metadata_path: str, pipeline_root: str, serving_dir: str) -> List[str]:
    """What is wrong with a recipe's local outputs between runs (``[]``: nothing).

    Checks, with no run in progress (hold the run lock):

    * ML Metadata: no execution left ``NEW`` or ``RUNNING``; every ``LIVE``
      artifact's URI exists;
    * the pipeline root: every output folder ``<node>/<key>/<execution id>``
      belongs to a ``COMPLETE`` execution (TFX removes a failed execution's
      outputs; :func:`abandon_unfinished` a killed one's);
    * the push destination: every version folder holds ``saved_model.pb``
      (TFX copies it last) and no staged push is left.

    Returns:
      one line per problem, naming the execution, artifact or folder.
    """
    problems: List[str] = []
    if os.path.isfile(metadata_path):
        from ml_metadata import metadata_store
        from ml_metadata.proto import metadata_store_pb2 as mlmd

        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = metadata_path
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
        store = metadata_store.MetadataStore(config)
        executions = {e.id: e for e in store.get_executions()}
        node_of = _node_ids(store)
        for e in executions.values():
            if e.last_known_state in (mlmd.Execution.NEW, mlmd.Execution.RUNNING):
                problems.append(f"execution {e.id} ({node_of.get(e.id, e.type)}) is still "
                                f"{mlmd.Execution.State.Name(e.last_known_state)}")
        for artifact in store.get_artifacts():
            if artifact.state == mlmd.Artifact.LIVE and artifact.uri and \
                    "://" not in artifact.uri and not os.path.exists(artifact.uri):
                problems.append(f"artifact {artifact.id} is LIVE but {artifact.uri} is missing")
        complete = {i for i, e in executions.items() if e.last_known_state == mlmd.Execution.COMPLETE}
        if os.path.isdir(pipeline_root):
            for node in sorted(os.listdir(pipeline_root)):
                node_dir = os.path.join(pipeline_root, node)
                for key in sorted(os.listdir(node_dir)) if os.path.isdir(node_dir) else []:
                    key_dir = os.path.join(node_dir, key)
                    if key.startswith(".") or not os.path.isdir(key_dir):
                        continue
                    for name in sorted(os.listdir(key_dir)):
                        if name.isdigit() and int(name) not in complete:
                            state = executions.get(int(name))
                            what = (mlmd.Execution.State.Name(state.last_known_state)
                                    if state else "unknown")
                            problems.append(f"{os.path.join(key_dir, name)}: output of a "
                                            f"{what} execution")
    if serving_dir and os.path.isdir(serving_dir):
        for name in sorted(os.listdir(serving_dir)):
            path = os.path.join(serving_dir, name)
            if name.startswith(".push-"):
                problems.append(f"{path}: a staged push left behind")
            elif name.isdigit() and not os.path.isfile(os.path.join(path, "saved_model.pb")):
                problems.append(f"{path}: an incomplete served version (no saved_model.pb)")
    return problems
