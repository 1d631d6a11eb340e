"""The Evaluator's baseline: the latest blessed model, read from the push destination.

TFX's way, ``Resolver(LatestBlessedModelStrategy)``, queries ML Metadata inside
the orchestrator; compiled for Kubeflow it becomes two ``resolver``
executors, a Vertex AI Pipelines feature that the open-source KFP backend
refuses (``resolver executors not implemented``, kubeflow/pipelines
``backend/src/v2/compiler/argocompiler/dag.go``). This ordinary step does the
same job the same way under BeamDagRunner, LocalDagRunner and KFP: every
blessed model is pushed (the Pusher pushes exactly the blessed ones) to
``<push destination>/<version>/`` (TF Serving's layout, versions are whole
numbers, the newest is served), so the latest blessed model is the pushed
version with the highest number. The step copies it into its output
``model`` artifact, under ``Format-Serving/`` like a Trainer's model, so that
the Evaluator (``baseline_model``) and a warm-started Trainer (``base_model``)
read it as any TFX Model.

Never stale from a cache:

* locally, the pipeline is built right before it runs, with the version that
  is newest then as the ``pushed_version`` execution property: the step's
  cache key changes whenever a newer model is pushed, and the executor
  checks that the version it finds is that one;
* on Kubeflow, :class:`LatestPushedVersion`, a step whose cache the compiler
  turns off, lists the push destination on every run; its output is this
  step's ``pushed_version`` input parameter, which is in KFP's cache key
  (``backend/src/v2/cacheutils/cache.go``): the copy is made again exactly
  when a newer model was pushed.

Before the first push there is no baseline: the output holds no model and
its custom property ``pushed_version`` is ``""``; the Evaluator then judges
the model by its thresholds alone (:mod:`model_garden.components.evaluator`).
"""

import logging
import posixpath
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import component_spec, standard_artifacts
from tfx.utils import io_utils

COMPONENT_ID = "LatestBlessedModel"
PUSH_DESTINATION_KEY = "push_destination"
PUSHED_VERSION_KEY = "pushed_version"
MODEL_KEY = "model"
#: TFX's model layout (``tfx.utils.path_utils.serving_model_dir``).
SERVING_MODEL_DIR = "Format-Serving"


def pushed_versions(push_destination: str) -> List[int]:
    """The versions pushed to ``push_destination``, ascending.

    A version is a folder whose name is a whole number and which holds a
    ``saved_model.pb`` (what the Pusher writes; a half-copied folder without
    it is not a version). A destination that does not exist yet has none.
    """
    if not fileio.isdir(push_destination):
        return []
    versions = []
    for name in fileio.listdir(push_destination):
        name = name.rstrip("/")
        if name.isdigit() and fileio.exists(
                posixpath.join(push_destination, name, "saved_model.pb")):
            versions.append(int(name))
    return sorted(versions)


def latest_pushed_version(push_destination: str) -> str:
    """The newest pushed version as a string, ``""`` when nothing was pushed."""
    versions = pushed_versions(push_destination)
    return str(versions[-1]) if versions else ""


def has_model(artifact) -> bool:
    """Whether a :class:`LatestBlessedModel` output (or any Model) holds a SavedModel."""
    uri = artifact.uri
    return (fileio.exists(posixpath.join(uri, SERVING_MODEL_DIR, "saved_model.pb"))
            or fileio.exists(posixpath.join(uri, "saved_model.pb")))


class LatestBlessedModelSpec(component_spec.ComponentSpec):
    """``push_destination`` and ``pushed_version`` in, ``model`` out."""

    PARAMETERS = {
        PUSH_DESTINATION_KEY: component_spec.ExecutionParameter(type=str),
        PUSHED_VERSION_KEY: component_spec.ExecutionParameter(type=str),
    }
    INPUTS: Dict[str, Any] = {}
    OUTPUTS = {MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model)}


class Executor(base_executor.BaseExecutor):
    """Copies the newest pushed version into the output Model (or leaves it empty).

    Raises:
      RuntimeError: the newest version is not ``pushed_version`` (another run
        pushed in between).
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        destination = exec_properties[PUSH_DESTINATION_KEY]
        expected = exec_properties[PUSHED_VERSION_KEY]
        found = latest_pushed_version(destination)
        if found != expected:
            raise RuntimeError(
                f"{destination}: the newest pushed version is {found or 'none'}, not "
                f"{expected or 'none'} as when this run started: another run pushed a model; "
                "run again to compare against it")
        (model,) = output_dict[MODEL_KEY]
        model.set_string_custom_property(PUSHED_VERSION_KEY, found)
        if not found:
            logging.info("%s: nothing pushed yet, no baseline", destination)
            return
        source = posixpath.join(destination, found)
        model.set_string_custom_property("pushed_uri", source)
        io_utils.copy_dir(source, posixpath.join(model.uri, SERVING_MODEL_DIR))
        logging.info("baseline: %s", source)


class LatestBlessedModel(base_component.BaseComponent):
    """The step whose ``model`` output is the latest blessed (= pushed) model.

    Args:
      push_destination: the Pusher's ``base_directory``.
      pushed_version: the newest version (``""``: none); ``None``: look now
        (:func:`latest_pushed_version`); on Kubeflow the ``.future()[0].value``
        of :class:`LatestPushedVersion`'s output.
    """

    SPEC_CLASS = LatestBlessedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, push_destination: str, pushed_version: Optional[str] = None):
        if pushed_version is None:
            pushed_version = latest_pushed_version(push_destination)
        super().__init__(spec=LatestBlessedModelSpec(
            push_destination=push_destination, pushed_version=pushed_version,
            model=types.Channel(type=standard_artifacts.Model)))


# --- the Kubeflow step resolving the version at run time ---------------------------

VERSION_COMPONENT_ID = "LatestPushedVersion"


class LatestPushedVersionSpec(component_spec.ComponentSpec):
    """``push_destination`` in, ``pushed_version`` (a ``String``) out."""

    PARAMETERS = {PUSH_DESTINATION_KEY: component_spec.ExecutionParameter(type=str)}
    INPUTS: Dict[str, Any] = {}
    OUTPUTS = {PUSHED_VERSION_KEY: component_spec.ChannelParameter(type=standard_artifacts.String)}


class VersionExecutor(base_executor.BaseExecutor):
    """Writes :func:`latest_pushed_version` as the ``pushed_version`` String."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        (artifact,) = output_dict[PUSHED_VERSION_KEY]
        artifact.value = latest_pushed_version(exec_properties[PUSH_DESTINATION_KEY])
        logging.info("latest pushed version: %s", artifact.value or "none")


class LatestPushedVersion(base_component.BaseComponent):
    """The never-cached Kubeflow step listing the push destination on every run.

    Its ``pushed_version`` output is :class:`LatestBlessedModel`'s
    ``pushed_version`` input parameter (``.future()[0].value``), so that step
    is served from KFP's cache exactly while no newer model was pushed: the
    baseline, and everything that reads it, re-runs only after a push.
    """

    SPEC_CLASS = LatestPushedVersionSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VersionExecutor)

    def __init__(self, push_destination: str):
        super().__init__(spec=LatestPushedVersionSpec(
            push_destination=push_destination,
            pushed_version=types.Channel(type=standard_artifacts.String)))
