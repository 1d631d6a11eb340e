"""Container entrypoint for TFX components on the open-source Kubeflow Pipelines v2 backend.

The compiler (:func:`model_garden.kubeflow.compiler.adapt_for_open_source_backend`)
runs every component as ``python -m model_garden.kubeflow.entrypoint`` with
TFX's own arguments (``--executor_class_path``, ``--json_serialized_invocation_args
{{$}}``, ``--json_serialized_inputs_spec_args``, Beam arguments) plus
``--json_serialized_outputs_spec_args`` (the component's ``outputDefinitions``).
TFX's ``kubeflow_v2_run_executor`` was written for Vertex AI Pipelines; this
module fixes what the open-source driver and launcher hand it, then runs
TFX's own ``_run_executor`` (parse the ExecutorInput, run the executor, write
the ExecutorOutput) unchanged:

1. ``system.*`` schema titles. The OSS driver types input artifacts read back
   from ML Metadata as ``system.Artifact``/``system.Model``/... (or not at all:
   ``toRuntimeArtifact`` in ``backend/src/v2/metadata/client.go`` sets no type;
   ``kfp/local/executor_input_utils.py`` writes the ``dsl.Artifact``'s
   ``schema_title``), and TFX's ``kubeflow_v2_entrypoint_utils`` imports a
   class named after the title: ``ImportError: Could not import
   system.Artifact``. Such an artifact takes its type from the component's
   spec: ``--json_serialized_inputs_spec_args`` for inputs,
   ``--json_serialized_outputs_spec_args`` for outputs (the driver's
   ``provisionOutputs``, ``backend/src/v2/driver/driver.go``, copies the
   outputs spec's type, but adds undeclared ones such as ``executor-logs``,
   typed ``system.Artifact``; those are not the executor's and are left out).
   Source: sky-uk/kfp-operator ``provider-service/kfp/tfx-patch`` (PR #1248,
   patches 1, 3 and 4).
2. A missing or empty ``instanceSchema`` (``yaml.safe_load("")`` is ``None``,
   then ``.get('title')`` fails; no ``type`` at all leaves ``title`` unbound
   in ``_retrieve_class_path``): same fix, the type from the spec.
   Source: sky-uk/kfp-operator PR #1248, patch 2.
3. Directory markers: the KFP launcher downloads zero-byte object-store
   "directory marker" blobs (``.../Format-Serving/``, written by TF's GCS
   filesystem) as zero-byte files (kubeflow/pipelines#13476; fix proposed in
   kubeflow/pipelines#13537), so an input Model's ``Format-Serving`` is a
   file where TFX (Evaluator, Pusher) expects a directory. In each input
   artifact's local copy (the URI itself when local, else the launcher's
   ``/gcs/``, ``/minio/``, ``/s3/`` path, ``LocalPathForURI`` in
   ``backend/src/v2/component/launcher_v2.go``), a zero-byte regular file
   where TFX expects a directory (:data:`DIRECTORY_NAMES`,
   :data:`DIRECTORY_PREFIXES`, or the root of a non-value artifact) is
   replaced by an empty directory, with a warning.
4. ``pure virtual method called`` at interpreter exit, after the executor
   finished (C++ destructors of TF/Beam/ml-metadata; sky-uk/kfp-operator
   PR #1286): the ExecutorOutput is written to a temporary file beside
   ``outputs.outputFile`` and renamed into place (the launcher never reads a
   half-written file), stdout/stderr are flushed and the process leaves
   with ``os._exit(0)``; on an exception the traceback is printed and it
   leaves with ``os._exit(1)``, with no output file.
"""

import os
import sys
import traceback
from typing import List, Optional, Sequence, Tuple

import yaml
from absl import logging
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.dsl.io import fileio
from tfx.orchestration.kubeflow.v2 import compiler_utils
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.types import value_artifact
from tfx.utils import import_utils, path_constants

#: The extra argument the compiler passes: the component's ``outputDefinitions`` (JSON).
OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"
#: Titles the KFP backend gives artifacts whose TFX type it does not know.
SYSTEM_TITLE_PREFIX = "system."
#: Names that are directories in TFX artifacts: the Model's serving and eval
#: model folders (``tfx.utils.path_constants``) and a SavedModel's folders.
DIRECTORY_NAMES = frozenset({path_constants.SERVING_MODEL_DIR, path_constants.EVAL_MODEL_DIR,
                             "variables", "assets", "assets.extra"})
#: Name prefixes of directories in TFX artifacts (``Split-train``, ...).
DIRECTORY_PREFIXES = ("Split-",)
#: Local roots of the launcher's artifact copies, by URI scheme (``launcher_v2.go``).
LAUNCHER_LOCAL_ROOTS = {"gs://": "gcs", "minio://": "minio", "s3://": "s3"}


def schema_title(type_schema: pipeline_spec_pb2.ArtifactTypeSchema) -> Optional[str]:
    """The title of an artifact type: ``schemaTitle``, or ``title:`` of ``instanceSchema``.

    Returns ``None`` when the type has neither, or the instance schema is
    empty or has no title.
    """
    kind = type_schema.WhichOneof("kind")
    if kind == "schema_title":
        return type_schema.schema_title or None
    if kind == "instance_schema":
        data = yaml.safe_load(type_schema.instance_schema or "")
        return (data.get("title") or None) if isinstance(data, dict) else None
    return None


def is_tfx_type(type_schema: pipeline_spec_pb2.ArtifactTypeSchema) -> bool:
    """Whether TFX's entrypoint can import the type's class (a title, not ``system.*``)."""
    title = schema_title(type_schema)
    return bool(title) and not title.startswith(SYSTEM_TITLE_PREFIX)


def fix_artifact_types(artifacts, specs, direction: str) -> List[str]:
    """Gives artifacts without a TFX type (``system.*``, none) their type from the spec.

    Args:
      artifacts: ``ExecutorInput.inputs.artifacts`` or ``.outputs.artifacts``
        (name -> ``ArtifactList``), changed in place.
      specs: the component's ``ComponentInputsSpec.artifacts`` or
        ``ComponentOutputsSpec.artifacts`` (name -> ``ArtifactSpec``); ``None``
        when the command line has no spec.
      direction: ``"input"`` or ``"output"``, for messages.

    Returns:
      The names of the artifacts whose type was replaced.

    Raises:
      ValueError: an artifact has no TFX type and the spec gives none for it.

    Sources: sky-uk/kfp-operator PR #1248 (patches 1-4);
    kubeflow/pipelines ``backend/src/v2/driver/driver.go``.
    """
    fixed = []
    for name, artifact_list in artifacts.items():
        for artifact in artifact_list.artifacts:
            if is_tfx_type(artifact.type):
                continue
            spec = specs.get(name) if specs is not None else None
            if spec is None or not is_tfx_type(spec.artifact_type):
                raise ValueError(
                    f"{direction} artifact {name!r} ({artifact.uri}) has type "
                    f"{schema_title(artifact.type) or 'none'}, which names no TFX artifact class, "
                    f"and the component's {direction}s spec gives no TFX type for it")
            logging.warning("%s artifact %r: type %s from the KFP backend replaced by %s "
                            "from the component spec", direction, name,
                            schema_title(artifact.type) or "none",
                            schema_title(spec.artifact_type))
            artifact.type.CopyFrom(spec.artifact_type)
            fixed.append(name)
    return fixed


def drop_undeclared_outputs(outputs, specs) -> List[str]:
    """Removes the outputs the backend added that the component does not declare.

    The OSS driver adds an ``executor-logs`` output (``system.Artifact``) when
    logs are published (``provisionOutputs``, ``backend/src/v2/driver/driver.go``);
    the launcher fills it, the executor knows nothing of it. Only outputs
    without a TFX type are dropped; nothing when ``specs`` is ``None``.

    Returns:
      The names removed.
    """
    if specs is None:
        return []
    dropped = [name for name, artifact_list in outputs.items()
               if name not in specs and not all(is_tfx_type(a.type)
                                                for a in artifact_list.artifacts)]
    for name in dropped:
        logging.info("output %r is the KFP backend's, not the component's: not passed to TFX",
                     name)
        del outputs[name]
    return dropped


def local_copy(uri: str) -> Optional[str]:
    """Where the artifact at ``uri`` lies on this machine, or ``None``.

    A local URI is its own copy; for ``gs://``, ``minio://`` and ``s3://`` it
    is the launcher's download (``$ARTIFACT_LOCAL_PATH/gcs/...``, see
    ``LocalPathForURI`` in kubeflow/pipelines ``backend/src/v2/component/launcher_v2.go``)
    when that exists.
    """
    for scheme, root in LAUNCHER_LOCAL_ROOTS.items():
        if uri.startswith(scheme):
            path = os.path.join(os.environ.get("ARTIFACT_LOCAL_PATH", "") + "/" + root,
                                uri[len(scheme):])
            return path if os.path.lexists(path) else None
    if "://" in uri or not uri or not os.path.lexists(uri):
        return None
    return uri


def _is_marker(path: str) -> bool:
    return os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) == 0


def _replace_by_directory(path: str) -> None:
    logging.warning("%s: a zero-byte directory marker where a directory belongs "
                    "(kubeflow/pipelines#13476): replaced by an empty directory", path)
    os.remove(path)
    os.makedirs(path)


def fix_directory_markers(root: str, root_is_directory: bool = True) -> List[str]:
    """Replaces zero-byte files where TFX expects directories under ``root`` by directories.

    A zero-byte regular file named as in :data:`DIRECTORY_NAMES` or
    starting with one of :data:`DIRECTORY_PREFIXES`, or ``root`` itself when
    ``root_is_directory``, is a directory marker the KFP launcher downloaded
    as a file (kubeflow/pipelines#13476): it is removed and an empty
    directory made in its place. Non-empty files are never touched.

    Args:
      root: a local folder (or file) of an input artifact.
      root_is_directory: whether the artifact itself is a folder (every TFX
        artifact but the value artifacts, whose URI is a file).

    Returns:
      The paths replaced.

    Raises:
      OSError: a marker could not be removed or the directory made.
    """
    fixed = []
    if root_is_directory and _is_marker(root):
        _replace_by_directory(root)
        return [root]
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if (name in DIRECTORY_NAMES or name.startswith(DIRECTORY_PREFIXES)) and _is_marker(path):
                _replace_by_directory(path)
                fixed.append(path)
    return fixed


def _artifact_class(type_schema: pipeline_spec_pb2.ArtifactTypeSchema):
    title = schema_title(type_schema)
    return import_utils.import_class_by_path(compiler_utils.TITLE_TO_CLASS_PATH.get(title, title))


def fix_input_directory_markers(inputs) -> List[str]:
    """:func:`fix_directory_markers` on the local copy of every input artifact.

    Args:
      inputs: ``ExecutorInput.inputs.artifacts``, with TFX types (after
        :func:`fix_artifact_types`).

    Returns:
      The paths replaced.
    """
    fixed = []
    for artifact_list in inputs.values():
        for artifact in artifact_list.artifacts:
            path = local_copy(artifact.uri)
            if path is not None:
                is_value = issubclass(_artifact_class(artifact.type), value_artifact.ValueArtifact)
                fixed += fix_directory_markers(path, root_is_directory=not is_value)
    return fixed


def _pop_flag(argv: List[str], flag: str) -> Tuple[List[str], Optional[str]]:
    """``argv`` without ``flag VALUE`` / ``flag=VALUE``, and the value."""
    rest, value, i = [], None, 0
    while i < len(argv):
        if argv[i] == flag and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith(flag + "="):
            value = argv[i][len(flag) + 1:]
        else:
            rest.append(argv[i])
        i += 1
    return rest, value


def run(argv: Sequence[str]) -> str:
    """Fixes the executor input for TFX, runs the executor, writes the ExecutorOutput.

    Args:
      argv: the container's arguments (without the program name): TFX's
        (see ``_parse_flags`` in ``kubeflow_v2_run_executor``) and
        optionally :data:`OUTPUTS_SPEC_FLAG`.

    Returns:
      The path of the ExecutorOutput written (``outputs.outputFile``).

    Raises:
      ValueError: an artifact without a TFX type the spec does not give.
      SystemExit: bad arguments (argparse).
      Exception: whatever the executor raises; no output file is written then.
    """
    argv, outputs_spec_json = _pop_flag(list(argv), OUTPUTS_SPEC_FLAG)
    args, beam_args = kubeflow_v2_run_executor._parse_flags(argv)  # pylint: disable=protected-access
    executor_input = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(args.json_serialized_invocation_args, executor_input,
                      ignore_unknown_fields=True)
    inputs_spec = outputs_spec = None
    if args.json_serialized_inputs_spec_args:
        inputs_spec = json_format.Parse(args.json_serialized_inputs_spec_args,
                                        pipeline_spec_pb2.ComponentInputsSpec(),
                                        ignore_unknown_fields=True)
    if outputs_spec_json:
        outputs_spec = json_format.Parse(outputs_spec_json,
                                         pipeline_spec_pb2.ComponentOutputsSpec(),
                                         ignore_unknown_fields=True)

    fix_artifact_types(executor_input.inputs.artifacts,
                       inputs_spec.artifacts if inputs_spec else None, "input")
    drop_undeclared_outputs(executor_input.outputs.artifacts,
                            outputs_spec.artifacts if outputs_spec else None)
    fix_artifact_types(executor_input.outputs.artifacts,
                       outputs_spec.artifacts if outputs_spec else None, "output")
    fix_input_directory_markers(executor_input.inputs.artifacts)

    # TFX writes the ExecutorOutput in place; it writes to a temporary file in
    # the same folder (so TFX's task root and unique id, its dirname, stay)
    # and the rename makes it appear whole.
    output_file = executor_input.outputs.output_file
    if not output_file:
        raise ValueError("the executor input names no outputs.outputFile")
    partial = f"{output_file}.partial-{os.getpid()}"
    if fileio.exists(output_file):  # a driver's exec_properties update, read by TFX
        fileio.copy(output_file, partial, overwrite=True)
    executor_input.outputs.output_file = partial
    args.json_serialized_invocation_args = json_format.MessageToJson(executor_input)
    try:
        kubeflow_v2_run_executor._run_executor(args, beam_args)  # pylint: disable=protected-access
        if not fileio.exists(partial):
            raise RuntimeError(f"TFX's executor run wrote no ExecutorOutput to {partial}")
        fileio.rename(partial, output_file, overwrite=True)
    finally:
        if fileio.exists(partial):
            fileio.remove(partial)
    logging.info("ExecutorOutput written to %s", output_file)
    return output_file


def _flush() -> None:
    logging.flush()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed pipe: nothing more to say anyway
            pass


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs :func:`run` and leaves the process with ``os._exit``, skipping C++ destructors.

    Exit status 0 after the ExecutorOutput is written; 1 (traceback on
    stderr) on any exception; argparse's status on bad arguments. Never
    returns. Source: sky-uk/kfp-operator PR #1286 (``pure virtual method
    called`` at interpreter shutdown).

    Args:
      argv: the arguments without the program name; ``sys.argv[1:]`` if ``None``.
    """
    status = 0
    try:
        run(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
        status = 1
    _flush()
    os._exit(status)  # pylint: disable=protected-access


if __name__ == "__main__":
    main()
