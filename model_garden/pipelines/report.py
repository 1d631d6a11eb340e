"""What a local run did, read back from its ML Metadata (SQLite) store.

``model-garden run`` shows these executions live (:mod:`.progress`), then the
anomalies the ExampleValidator found against the curated schema
(:func:`anomalies_summary`);
the end-to-end tests and the benchmarks use it to check caching (``CACHED``
executions) and to time each component. Times are MLMD's execution create /
last-update timestamps.
"""

import dataclasses
from typing import List, Optional


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    """One component execution of a pipeline run.

    Attributes:
      node_id: the component id, e.g. ``"Trainer"``.
      state: MLMD execution state name: ``COMPLETE``, ``CACHED``,
        ``FAILED``, ``RUNNING``, ...
      seconds: wall time from the execution's creation to its last update.
      execution_id: the MLMD execution id.
      blessed: for the Evaluator, whether its ModelBlessing says blessed;
        for the Pusher, whether it pushed; for the ExampleValidator, whether
        every split is free of anomalies; else ``None``.
      started_ms: the execution's creation time, milliseconds since the epoch.
    """

    node_id: str
    state: str
    seconds: float
    execution_id: int
    blessed: Optional[bool] = None
    started_ms: float = 0.0


def open_store(metadata_path: str):
    """A read-only ``MetadataStore`` on the SQLite file ``metadata_path``."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _outcome(store, execution) -> Optional[bool]:
    """Blessed (Evaluator) or pushed (Pusher) from the execution's outputs."""
    events = store.get_events_by_execution_ids([execution.id])
    outputs = [e.artifact_id for e in events if e.type == e.OUTPUT]
    for artifact in store.get_artifacts_by_id(outputs):
        for key in ("blessed", "pushed"):
            if key in artifact.custom_properties:
                value = artifact.custom_properties[key]
                if value.HasField("struct_value"):  # ExampleValidator: per split
                    return all(v.number_value == 1 for v in value.struct_value.fields.values())
                return bool(value.int_value)
    return None


def pipeline_runs(metadata_path: str, store=None) -> List[str]:
    """Names of the pipeline runs in the store, oldest first.

    ``store``: an open store of ``metadata_path`` to reuse (a poller's).
    """
    store = store or open_store(metadata_path)
    runs = store.get_contexts_by_type("pipeline_run")
    return [c.name for c in sorted(runs, key=lambda c: c.create_time_since_epoch)]


def component_runs(metadata_path: str, run: Optional[str] = None,
                   store=None) -> List[ComponentRun]:
    """The component executions of one pipeline run, in start order.

    Args:
      metadata_path: the run's ``metadata.sqlite``.
      run: a pipeline run name from :func:`pipeline_runs`; default the latest.
      store: an open store of ``metadata_path`` to reuse (a poller's).

    Returns:
      One :class:`ComponentRun` per executed (or cached) component.

    Raises:
      ValueError: the store holds no pipeline run.
    """
    from ml_metadata.proto import metadata_store_pb2

    store = store or open_store(metadata_path)
    names = pipeline_runs(metadata_path, store)
    if not names:
        raise ValueError(f"{metadata_path}: no pipeline run recorded")
    context = store.get_context_by_type_and_name("pipeline_run", run or names[-1])
    node_of = {}
    for node in store.get_contexts_by_type("node"):
        for execution in store.get_executions_by_context(node.id):
            node_of[execution.id] = node.name.split(".", 1)[-1]
    rows = []
    for execution in sorted(
        store.get_executions_by_context(context.id), key=lambda e: e.create_time_since_epoch
    ):
        rows.append(
            ComponentRun(
                node_id=node_of.get(execution.id, execution.type),
                state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch)
                / 1000.0,
                execution_id=execution.id,
                blessed=_outcome(store, execution),
                started_ms=execution.create_time_since_epoch,
            )
        )
    return rows


def examples_summary(metadata_path: str, run: Optional[str] = None) -> str:
    """Where the ExampleGen of a run wrote its examples, and its counts.

    One line per Examples artifact of the run's ExampleGen (its URI and
    splits), then, when the ExampleGen recorded them (the image ExampleGen),
    the images written, re-encoded and skipped, with the skipped files' list.

    Raises:
      ValueError: the store holds no pipeline run.
    """
    import os

    store = open_store(metadata_path)
    rows = [r for r in component_runs(metadata_path, run) if r.node_id == "ExampleGen"]
    lines = []
    for row in rows:
        events = store.get_events_by_execution_ids([row.execution_id])
        outputs = [e.artifact_id for e in events if e.type == e.OUTPUT]
        for artifact in store.get_artifacts_by_id(outputs):
            splits = artifact.properties["split_names"].string_value if (
                "split_names" in artifact.properties) else ""
            lines.append(f"examples: {artifact.uri} (splits {splits})")
            props = artifact.custom_properties
            if "images_written" in props:
                skipped = props["images_skipped"].int_value
                line = (f"images: {props['images_written'].int_value:,} written "
                        f"({props['images_reencoded'].int_value:,} re-encoded to RGB JPEG), "
                        f"{skipped:,} skipped")
                if skipped:
                    line += f": listed in {os.path.join(artifact.uri, 'skipped_images.txt')}"
                lines.append(line)
    return "\n".join(lines)


def anomalies(metadata_path: str, run: Optional[str] = None):
    """The anomalies the ExampleValidator of a run found against the curated schema.

    Reads the run's ExampleValidator output (an ``ExampleAnomalies`` artifact,
    also when the execution came from the cache) with
    :func:`model_garden.components.anomalies_gate.read_anomalies`.

    Args:
      metadata_path: the run's ``metadata.sqlite``.
      run: a pipeline run name from :func:`pipeline_runs`; default the latest.

    Returns:
      A list of :class:`model_garden.components.anomalies_gate.Anomaly`
      (split, feature, kind, TFDV's descriptions), ``[]`` for clean data, or
      ``None`` when the run has no ExampleValidator output (it did not get
      that far).

    Raises:
      ValueError: the store holds no pipeline run.
    """
    from model_garden.components.anomalies_gate import read_anomalies

    found = None
    for artifact in output_artifacts(metadata_path, "ExampleValidator", "ExampleAnomalies", run):
        found = (found or []) + read_anomalies(artifact)
    return found


def output_artifacts(metadata_path: str, node_id: str, type_name: str,
                     run: Optional[str] = None) -> list:
    """The outputs of type ``type_name`` of component ``node_id`` in one run.

    Only a ``COMPLETE`` or ``CACHED`` execution counts (a cached one's
    outputs are the earlier run's artifacts, which it reused).

    Args:
      metadata_path: the run's ``metadata.sqlite``.
      node_id: the component id, e.g. ``"Evaluator"``.
      type_name: the MLMD artifact type, e.g. ``"ModelEvaluation"``,
        ``"ExampleStatistics"``, ``"ModelRun"``, ``"PushedModel"``.
      run: a pipeline run name from :func:`pipeline_runs`; default the latest.

    Returns:
      TFX artifacts (``tfx.types.Artifact``: ``uri``, ``split_names``,
      custom properties), in MLMD id order; ``[]`` when the component did
      not complete in that run.

    Raises:
      ValueError: the store holds no pipeline run.
    """
    from tfx.types import artifact_utils

    store = open_store(metadata_path)
    found = []
    for row in component_runs(metadata_path, run):
        if row.node_id != node_id or row.state not in ("COMPLETE", "CACHED"):
            continue
        events = store.get_events_by_execution_ids([row.execution_id])
        outputs = store.get_artifacts_by_id([e.artifact_id for e in events if e.type == e.OUTPUT])
        for artifact in sorted(outputs, key=lambda a: a.id):
            (artifact_type,) = store.get_artifact_types_by_id([artifact.type_id])
            if artifact_type.name == type_name:
                found.append(artifact_utils.deserialize_artifact(artifact_type, artifact))
    return found


def _on_anomalies(metadata_path: str, run: Optional[str]) -> Optional[str]:
    """The AnomaliesGate's ``on_anomalies`` in that run (``None``: no gate ran)."""
    store = open_store(metadata_path)
    for row in component_runs(metadata_path, run):
        if row.node_id == "AnomaliesGate":
            (execution,) = store.get_executions_by_id([row.execution_id])
            value = execution.custom_properties.get("on_anomalies")
            return value.string_value if value is not None else None
    return None


def anomalies_summary(metadata_path: str, run: Optional[str] = None) -> str:
    """What ``model-garden run`` prints after its component table about schema anomalies.

    ``anomalies: none`` for clean data; else a header with the count and the
    gate's policy, then one aligned line per anomaly: split, feature, kind
    (TFDV's ``AnomalyInfo.Type``), short description: description, e.g.::

        anomalies against the curated schema: 1 (on_anomalies=warn: the pipeline went on)
          train  workclass  ENUM_TYPE_UNEXPECTED_STRING_VALUES  Unexpected string values: ...

    ``anomalies: not checked ...`` when the run has no ExampleValidator output.

    Raises:
      ValueError: the store holds no pipeline run.
    """
    from model_garden.components.anomalies_gate import describe

    found = anomalies(metadata_path, run)
    if found is None:
        return "anomalies: not checked (the ExampleValidator did not complete)"
    if not found:
        return "anomalies: none"
    policy = _on_anomalies(metadata_path, run)
    effect = {"warn": ": the pipeline went on", "fail": ": the pipeline stopped before Transform"}
    header = f"anomalies against the curated schema: {len(found)}"
    if policy:
        header += f" (on_anomalies={policy}{effect.get(policy, '')})"
    return "\n".join([header] + ["  " + line for line in describe(found)])
