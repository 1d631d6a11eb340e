"""The anomalies gate: schema anomalies stop the pipeline before Transform, or are listed.

TFX's ExampleValidator compares the statistics of every split with the
curated schema (``tfdv.validate_statistics``) and writes what it finds as an
``ExampleAnomalies`` artifact, one ``Anomalies`` proto per split
(``Split-<name>/SchemaDiff.pb``); it never fails, so an unknown census
category ('Space-force') or an image of the wrong size used to show only as
``no`` in the run summary while Transform, Trainer and Evaluator trained on
the data. This step reads that artifact and, by its ``on_anomalies``
execution property:

* ``warn``: logs each anomaly and succeeds (``model-garden run``'s default;
  the run summary lists them, :func:`model_garden.pipelines.report.anomalies`);
* ``fail``: raises :class:`AnomaliesFound`, one line listing each anomaly
  (split, feature, kind, TFDV's short and long description), so nothing
  downstream runs (``model-garden compile``'s default: the package that
  ``schedule`` runs retrains unattended).

Transform runs after this step (``add_upstream_node`` in
:func:`model_garden.pipelines.factory.create_pipeline`): BeamDagRunner and
LocalDagRunner order nodes by the IR's ``upstream_nodes``, and the compiled
KFP task gets ``dependentTasks``, which the open-source backend turns into
Argo's ``depends: AnomaliesGate.Succeeded`` (kubeflow/pipelines
``backend/src/v2/compiler/argocompiler/dag.go``) and ``kfp.local`` into its
topological order. On Kubeflow ``on_anomalies`` is a pipeline parameter
(:mod:`model_garden.kubeflow.compiler`), checked here when the step runs.
"""

import dataclasses
import logging
from typing import Any, Dict, Iterable, List

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, component_spec, standard_artifacts
from tfx.utils import io_utils

from model_garden.validate import check_on_anomalies

#: The step's node id (its KFP task name).
COMPONENT_ID = "AnomaliesGate"
#: Input: the ExampleValidator's ``anomalies`` output.
ANOMALIES_KEY = "anomalies"
#: Execution property (and KFP pipeline parameter): ``"warn"`` or ``"fail"``.
ON_ANOMALIES_KEY = "on_anomalies"
#: ``feature`` of an anomaly of the whole dataset (``Anomalies.dataset_anomaly_info``).
DATASET = "(dataset)"


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One anomaly, as TFDV words it.

    Attributes:
      split: the split it was found in (``"train"``, ``"test"``).
      feature: the feature's path as TFDV names it (``"workclass"``), or
        :data:`DATASET` for an anomaly of the whole split.
      kind: the ``AnomalyInfo.Type`` name of the reason, e.g.
        ``"ENUM_TYPE_UNEXPECTED_STRING_VALUES"``.
      short_description: TFDV's short description, ``"Unexpected string values"``.
      description: TFDV's description, ``"Examples contain values missing
        from the schema: Space-force (<1%)."``.
    """

    split: str
    feature: str
    kind: str
    short_description: str
    description: str

    def __str__(self) -> str:
        return (f"{self.split}: {self.feature}: {self.kind} ({self.short_description}): "
                f"{self.description}")


class AnomaliesFound(RuntimeError):
    """The data has schema anomalies and ``on_anomalies`` is ``fail``.

    Build it with :meth:`listing`; like any exception it also takes a bare
    message (Beam re-raises an executor's error as ``type(e)(message + "
    [while running ...]")``).

    Attributes:
      anomalies: the :class:`Anomaly` list the message names (``[]`` when
        made from a bare message).
    """

    def __init__(self, message: str, anomalies: Iterable[Anomaly] = ()):
        super().__init__(message)
        self.anomalies = list(anomalies)

    @classmethod
    def listing(cls, anomalies: List[Anomaly]) -> "AnomaliesFound":
        """The error naming each of ``anomalies``, on one line."""
        count = f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}"
        return cls(f"{count} against the curated schema, stopped before Transform "
                   "(on_anomalies=fail; fix the data or the schema, or set on_anomalies=warn "
                   "to train on it anyway): " + "; ".join(str(a) for a in anomalies), anomalies)


def anomalies_of(proto, split: str) -> List[Anomaly]:
    """The anomalies of one split's ``Anomalies`` proto, one per reason, by feature.

    Args:
      proto: a ``tensorflow_metadata`` ``Anomalies`` (what
        ``tfdv.validate_statistics`` returns and ExampleValidator writes).
      split: the split's name, copied into each :class:`Anomaly`.

    Returns:
      Feature anomalies sorted by feature name, then the dataset-level ones
      (feature :data:`DATASET`); an ``AnomalyInfo`` without reasons gives one
      entry of kind ``UNKNOWN_TYPE`` with its own descriptions. ``[]`` when
      TFDV found nothing.
    """
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    def entries(feature, info):
        reasons = list(info.reason)
        if not reasons:
            return [Anomaly(split, feature, "UNKNOWN_TYPE", info.short_description.strip(),
                            info.description.strip())]
        return [Anomaly(split, feature, anomalies_pb2.AnomalyInfo.Type.Name(r.type),
                        r.short_description.strip(), r.description.strip()) for r in reasons]

    out = []
    for feature in sorted(proto.anomaly_info):
        out.extend(entries(feature, proto.anomaly_info[feature]))
    if proto.HasField("dataset_anomaly_info"):
        out.extend(entries(DATASET, proto.dataset_anomaly_info))
    return out


def read_anomalies(artifact) -> List[Anomaly]:
    """Every anomaly of an ``ExampleAnomalies`` artifact, split by split.

    Each split's proto is read as TFX writes it: the one file of
    ``Split-<split>/`` (``SchemaDiff.pb``, found with
    ``tfx.utils.io_utils.get_only_uri_in_dir``) parsed by TFDV's
    ``load_anomalies_binary``.

    Args:
      artifact: a ``tfx.types.standard_artifacts.ExampleAnomalies`` (its
        ``uri`` and ``split_names``).

    Returns:
      :func:`anomalies_of` of each split, in the artifact's split order.

    Raises:
      FileNotFoundError, ValueError (from TFX): a split folder that is
        missing or does not hold exactly one file.
    """
    from tensorflow_data_validation.utils import anomalies_util

    out = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = io_utils.get_only_uri_in_dir(artifact_utils.get_split_uri([artifact], split))
        out.extend(anomalies_of(anomalies_util.load_anomalies_binary(path), split))
    return out


def describe(anomalies: Iterable[Anomaly]) -> List[str]:
    """Aligned text lines, one per anomaly: split, feature, kind, descriptions."""
    anomalies = list(anomalies)
    if not anomalies:
        return []
    widths = [max(len(getattr(a, f)) for a in anomalies) for f in ("split", "feature", "kind")]
    return [f"{a.split:<{widths[0]}}  {a.feature:<{widths[1]}}  {a.kind:<{widths[2]}}  "
            f"{a.short_description}: {a.description}" for a in anomalies]


class AnomaliesGateSpec(component_spec.ComponentSpec):
    """``anomalies`` (ExampleAnomalies) and ``on_anomalies`` in; nothing out."""

    PARAMETERS = {ON_ANOMALIES_KEY: component_spec.ExecutionParameter(type=str)}
    INPUTS = {ANOMALIES_KEY: component_spec.ChannelParameter(
        type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS: Dict[str, Any] = {}


class Executor(base_executor.BaseExecutor):
    """Warns about, or fails on, the anomalies of the input ``ExampleAnomalies``.

    Raises:
      ValueError: ``on_anomalies`` is neither ``warn`` nor ``fail`` (a KFP
        run's ``--param on_anomalies=...``), before anything is read.
      AnomaliesFound: ``on_anomalies`` is ``fail`` and any split has an anomaly.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        policy = check_on_anomalies(exec_properties.get(ON_ANOMALIES_KEY),
                                    "pipeline parameter on_anomalies")
        anomalies = [a for artifact in input_dict[ANOMALIES_KEY]
                     for a in read_anomalies(artifact)]
        if not anomalies:
            logging.info("no anomalies against the curated schema")
            return
        if policy == "fail":
            raise AnomaliesFound.listing(anomalies)
        for anomaly in anomalies:
            logging.warning("anomaly (on_anomalies=warn, going on): %s", anomaly)


class AnomaliesGate(base_component.BaseComponent):
    """The step between the ExampleValidator and Transform (see the module docstring).

    Args:
      anomalies: the ExampleValidator's ``anomalies`` channel.
      on_anomalies: ``"warn"`` or ``"fail"`` (on Kubeflow the compiler
        replaces it by the ``on_anomalies`` pipeline parameter).

    Raises:
      ValueError: ``on_anomalies`` is neither.
    """

    SPEC_CLASS = AnomaliesGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, anomalies: types.BaseChannel, on_anomalies: str = "warn"):
        super().__init__(spec=AnomaliesGateSpec(
            anomalies=anomalies, on_anomalies=check_on_anomalies(on_anomalies, "on_anomalies")))
