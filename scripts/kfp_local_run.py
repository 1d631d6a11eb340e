#!/usr/bin/env python3
"""Run a compiled pipeline package with KFP's local orchestrator, each step in a container.

    .kfp-venv/bin/python scripts/kfp_local_run.py --package pipeline.yaml \\
        --pipeline-root /abs/root [--param train_steps=100 ...] [--summary out.json] \\
        [--add-span /data/mnist [--span-slice 0:2000] [--if-no-span]]

`make kfp-local` compiles RECIPE (default mnist) for the image built from the
current source, stages its data and runs it; `make kfp-local PACKAGE=...
PIPELINE_ROOT=...` runs a package as it is.  Runs under the tool venv of
`make kfp-venv` (kfp 2.17: `kfp.local` runs pipelines since 2.7; the
project's lock has kfp 2.5), so it imports neither model_garden nor tfx.
tests/test_kfp_local.py runs it three times on one root (first run, unchanged
data from cache, a new span).

What it does:
  * --add-span SRC: copies the raw files of SRC to <input base>/span-N/ (the
    package's InputSpans `input_base`, N the next free number), optionally
    only the idx items [START, START+COUNT) (--span-slice: real digits, a
    smaller span); the input base must lie under the pipeline root (below);
  * loads the package with `kfp.components.load_component_from_file` (a
    pipeline YAML loads as a graph component; calling it under `kfp.local.init`
    runs the whole DAG through kfp.local's pipeline orchestrator);
  * runs every container step with `kfp.local.DockerRunner(network_mode='host')`
    through the Docker SDK: DOCKER_HOST=unix:///run/podman/podman.sock for
    podman's Docker-API socket (scripts/podman-setup.sh starts it);
  * kfp.local's own cache (`enable_caching`, kfp >= 2.16): entries under
    <pipeline-root>/.kfp_cache, keyed by component name, image *tag*, command
    and input values/artifact URIs; a hit returns SUCCESS and is only logged,
    so this script records it itself (below);
  * prints and writes a JSON summary: per task its state (succeeded / cached /
    failed / not_run), seconds, inputs (parameter values, artifact URIs: what
    the executor input held), outputs (parameters, artifact URIs and
    metadata), plus the package's input base and push destination; with
    --dump-executor-inputs also each executor input and command line;
  * exits 1 when a task failed, naming it (and 2 on usage errors).

What kfp.local does not cover of a real cluster (so neither does this run):
  * the Go driver (backend/src/v2/driver): input resolution from MLMD, the
    cache lookup (GenerateCacheKey over input artifact *ids* in MLMD,
    parameter values, output specs and the container spec; kfp.local keys on
    artifact URIs/metadata and the image *tag*, so a rebuilt image under the
    same tag is a cache hit here), and the pod spec: the package's
    `platforms.kubernetes` document (GPU/TPU node selectors, tolerations) and
    resource requests are ignored (kfp.local warns "no effect");
  * the Go launcher (backend/src/v2/component/launcher_v2.go), the pod's real
    entry point: artifact download/upload between the object store (gs://,
    minio) and the pod's /gcs/, /minio/ paths, executor output handling,
    publishing executions and artifacts to MLMD.  Here URIs are local paths
    under the pipeline root and the steps write there directly;
  * Argo Workflows: no workflow (argocompiler), no pod per task; kfp.local runs
    the DAG's tasks one at a time in topological order (ParallelFor aside),
    where Argo runs independent tasks at once;
  * GKE scheduling: node pools, accelerators, service accounts, Workload
    Identity, the Trainer's TFJob (`--workers` > 1 creates it through the
    Kubernetes API, which nothing here serves);
  * MLMD and the API server: no lineage, no run records, no UI; run-time
    parameters are passed to the pipeline call, not through a run request.

Where this script drives something as the open-source backend does, instead of
kfp.local (kfp/local in kfp 2.17.3, read):
  * DockerRunner mounts only the pipeline root (same path inside and out) and
    refuses a `volumes` argument: inputs must lie under the pipeline root or in
    the image (--add-span puts them there).  The image's user (10001 in ours)
    writes there, so this script makes the root world-writable and creates its
    own files with umask 0 (on a cluster the launcher uploads to the bucket).
  * Task folders are named after the component key minus its first five
    characters (KFP's `comp-` prefix), not after the task.
  * kfp.local starts containers with auto_remove=True and, when the
    container is gone before its exit code is read (podman removes it at
    once), assumes exit code 0: a step that crashed was reported SUCCESS here
    (seen: InputSpans' traceback, then "task 'InputSpans' not found" downstream).
    This script runs each container itself (`_run_container`): removed only
    after its exit code is read, as Argo reads the pod's exit status.
  * kfp.local passes the step's command to the Docker SDK as `command`, which
    keeps the image's ENTRYPOINT (the TFX image's is Beam's boot): Kubernetes'
    `command` replaces the entrypoint, so `_run_container` does that too.
  * kfp.local does not create the folders of the output artifacts; KFP's
    launcher does, before the user command (backend/src/v2/component/
    launcher_v2.go, prepareOutputFolders: MkdirAll(Dir(local path)) of each
    output artifact and output parameter file), and TFX's executors rely on
    it (seen: NotFoundError writing InputSpans/input_spans).  This script does
    the same before each container starts (`_prepare_output_folders`).
  * kfp.local keeps a task's output parameters and output artifacts in one
    dict, so an artifact hides a parameter of the same name; TFX's KFP v2
    compiler emits value artifacts (String, Integer, ...) as both, under one
    name (seen: InputSpans' `input_spans`; ExampleGen then got the Artifact for
    its STRING parameter: "Value must be one of the following types: str, int,
    ...").  The backend keeps them apart (taskOutputParameter reads parameter
    outputs, taskOutputArtifact artifact outputs); `_separate_outputs` does so.
  * kfp.local hands downstream steps their input artifacts typed
    `system.Artifact` (TFX's types are instance schemas it does not know);
    left as it is by default (the cluster does not pass the declared type
    either), see `_keep_artifact_types` and --declared-artifact-types.
  * cache hits: kfp.local only logs them; the recorder notes them per task.
"""

import argparse
import gzip
import json
import logging
import os
import re
import shutil
import struct
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional

import yaml

import kfp
from kfp import dsl
from kfp import local
from kfp.local import cache as cache_module
from kfp.local import docker_task_handler
from kfp.local import executor_output_utils
from kfp.local import placeholder_utils
from kfp.local import status as status_module
from kfp.local import task_dispatcher
from kfp.local.orchestrator import enhanced_dag_orchestrator
from kfp.local.orchestrator import orchestrator_utils
from kfp.local.orchestrator import task_executor

_PARAM_TYPES = {
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "STRING": str,
    "BOOLEAN": lambda v: {"true": True, "false": False}[v.lower()],
    "STRUCT": json.loads,
    "LIST": json.loads,
}


class _Recorder:
    """What kfp.local did, task by task (it keeps no such record itself)."""

    def __init__(self, dump_dir: Optional[str]):
        self.tasks: Dict[str, Dict[str, Any]] = {}
        self.dump_dir = dump_dir
        self._local = threading.local()
        self._lock = threading.Lock()

    # kfp.local.orchestrator.task_executor.execute_single_task: one call per task
    def wrap_execute(self, original):
        def execute_single_task(task_name, task_spec, *args, **kwargs):
            self._local.cache_hit = False
            self._local.task_name = task_name
            start = time.time()
            record = {"component": task_spec.component_ref.name, "state": "running"}
            with self._lock:
                self.tasks[task_name] = record
            try:
                outputs, task_status = original(task_name, task_spec, *args, **kwargs)
            except BaseException as e:
                record.update(state="failed", seconds=round(time.time() - start, 1),
                              error=f"{type(e).__name__}: {e}")
                raise
            if task_status == status_module.Status.SUCCESS:
                state = "cached" if self._local.cache_hit else "succeeded"
            else:
                state = "failed"
            record.update(state=state, seconds=round(time.time() - start, 1),
                          outputs=_jsonable(outputs))
            return outputs, task_status
        return execute_single_task

    # kfp.local.cache.LocalCache.get: non-None is a cache hit for this thread's task
    def wrap_cache_get(self, original):
        recorder = self

        def get(cache_self, key):
            hit = original(cache_self, key)
            if hit is not None:
                recorder._local.cache_hit = True
                name = getattr(recorder._local, "task_name", None)
                if name in recorder.tasks:
                    recorder.tasks[name]["cache_key"] = key
            return hit
        return get

    # kfp.local.placeholder_utils.replace_placeholders, as task_dispatcher calls
    # it: the executor input dict and the final command line of the container
    def wrap_replace_placeholders(self, original):
        def replace_placeholders(full_command, executor_input_dict, pipeline_resource_name,
                                 task_resource_name, *args, **kwargs):
            command = original(full_command, executor_input_dict, pipeline_resource_name,
                               task_resource_name, *args, **kwargs)
            name = getattr(self._local, "task_name", task_resource_name)
            _prepare_output_folders(executor_input_dict)
            record = self.tasks.setdefault(name, {})
            inputs = executor_input_dict.get("inputs", {})
            record["inputs"] = {
                "parameters": inputs.get("parameterValues", {}),
                "artifacts": {k: [a.get("uri") for a in v.get("artifacts", [])]
                              for k, v in inputs.get("artifacts", {}).items()},
            }
            record["task_root"] = os.path.dirname(
                executor_input_dict.get("outputs", {}).get("outputFile", "")) or None
            if self.dump_dir:
                os.makedirs(self.dump_dir, exist_ok=True)
                path = os.path.join(self.dump_dir, f"{name}.executor_input.json")
                with open(path, "w") as f:
                    json.dump(executor_input_dict, f, indent=2, sort_keys=True)
                with open(os.path.join(self.dump_dir, f"{name}.command.json"), "w") as f:
                    json.dump(command, f, indent=2)
                record["executor_input_file"] = path
            return command
        return replace_placeholders


def _prepare_output_folders(executor_input: Dict[str, Any]) -> None:
    """What KFP's launcher does before the user command (prepareOutputFolders).

    The launcher creates them 0755 as the container's user; here the host
    creates them for the image's non-root user, hence world-writable.
    """
    outputs = executor_input.get("outputs", {})
    paths = [p.get("outputFile", "") for p in outputs.get("parameters", {}).values()]
    paths += [a.get("uri", "") for lst in outputs.get("artifacts", {}).values()
              for a in lst.get("artifacts", [])]
    paths.append(outputs.get("outputFile", ""))
    for path in paths:
        if path.startswith("/"):
            parent = os.path.dirname(path)
            os.makedirs(parent, mode=0o777, exist_ok=True)


def _run_container(client, image: str, command: List[str], volumes: Dict[str, Any],
                   **run_args) -> int:
    """docker_task_handler.run_docker_container, with Kubernetes' semantics.

    command[0] replaces the image's ENTRYPOINT (Kubernetes `command`), and the
    exit code is read before the container is removed.
    """
    import docker

    image = docker_task_handler.add_latest_tag_if_not_present(image=image)
    try:
        client.images.get(image)
        print(f"Found image {image!r}\n")
    except docker.errors.ImageNotFound:
        print(f"Pulling image {image!r}")
        client.images.pull(image)
    run_args.pop("auto_remove", None)
    container = client.containers.run(
        image=image, entrypoint=command[:1], command=command[1:], detach=True,
        stdout=True, stderr=True, volumes=volumes, auto_remove=False, **run_args)
    try:
        for chunk in container.logs(stream=True, follow=True):
            print(chunk.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass


_TYPED_CLASSES: Dict[str, type] = {}


def _instance_schema_title(schema: str) -> str:
    for line in (schema or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "title":
            return value.strip()
    return ""


def _keep_artifact_types() -> None:
    """Opt-in (--declared-artifact-types): input artifacts typed as their producer declared.

    TFX declares its artifact types as ``instanceSchema`` (``title:
    tfx.Examples``), not as a kfp ``schemaTitle``.  kfp.local turns every
    artifact whose schemaTitle it does not know into ``dsl.Artifact``
    (``kfp.dsl.executor.create_artifact_instance``), so the next step's
    executor input says ``system.Artifact`` (TFX's own entry point: "Could not
    import system.Artifact").  The backend does not pass the declared type
    either (its driver gives inputs read back from MLMD an instanceSchema the
    launcher never filled: backend/src/v2/metadata/client.go,
    GetOutputArtifactsByExecutionId, ``Schema: ""``), so by default the script
    leaves kfp.local's behaviour alone and the pipeline's entry point
    (model_garden.kubeflow.entrypoint) must cope with untyped inputs.  With
    this option a dsl.Artifact subclass per title keeps the type, which lets
    TFX's stock entry point run the package (a diagnosis aid, not the cluster).
    """
    from kfp.dsl import executor as dsl_executor
    from kfp.dsl.types import artifact_types

    original = dsl_executor.create_artifact_instance

    def create_artifact_instance(runtime_artifact, fallback_artifact_cls=dsl.Artifact):
        kind = runtime_artifact.get("type", {}) or {}
        title = kind.get("schemaTitle") or _instance_schema_title(kind.get("instanceSchema", ""))
        if (not title or title in artifact_types._SCHEMA_TITLE_TO_TYPE
                or fallback_artifact_cls is not dsl.Artifact):
            return original(runtime_artifact, fallback_artifact_cls)
        cls = _TYPED_CLASSES.get(title)
        if cls is None:
            cls = type(title.replace(".", "_"), (dsl.Artifact,), {"schema_title": title})
            _TYPED_CLASSES[title] = cls
        return cls(uri=runtime_artifact.get("uri", ""), name=runtime_artifact.get("name", ""),
                   metadata=runtime_artifact.get("metadata", {}) or {})

    dsl_executor.create_artifact_instance = create_artifact_instance


_ARTIFACT_KEY = "{}#artifact"  # where an artifact lives when a parameter has its name


def _separate_outputs() -> None:
    """Output parameters and artifacts in separate name spaces, as on the backend."""
    original_outputs = executor_output_utils.get_outputs_from_executor_output

    def get_outputs_from_executor_output(executor_output, executor_input, component_spec):
        both = set(executor_output.parameter_values) & set(executor_output.artifacts)
        outputs = original_outputs(executor_output, executor_input, component_spec)
        if both:
            parameters = executor_output_utils.cast_protobuf_numbers(
                {name: executor_output_utils.pb2_value_to_python(
                    executor_output.parameter_values[name]) for name in both},
                component_spec.output_definitions.parameters)
            for name in both:
                outputs[_ARTIFACT_KEY.format(name)] = outputs[name]
                outputs[name] = parameters[name]
        return outputs

    executor_output_utils.get_outputs_from_executor_output = get_outputs_from_executor_output
    utils_cls = orchestrator_utils.OrchestratorUtils
    original_arguments = utils_cls.make_task_arguments.__func__

    def make_task_arguments(cls, task_inputs_spec, io_store):
        arguments = original_arguments(cls, task_inputs_spec, io_store)
        for name, spec in task_inputs_spec.artifacts.items():
            if spec.HasField("task_output_artifact"):
                ref = spec.task_output_artifact
                try:
                    arguments[name] = io_store.get_task_output(
                        ref.producer_task, _ARTIFACT_KEY.format(ref.output_artifact_key))
                except ValueError:
                    pass  # no name clash: the original lookup stands
        return arguments

    utils_cls.make_task_arguments = classmethod(make_task_arguments)


# --- input data under the pipeline root ----------------------------------------

_SPAN_DIR = re.compile(r"^span-(\d+)$")   # model_garden.components.input_spans.SPAN_DIR
_IDX = re.compile(r"-idx\d-ubyte(\.gz)?$")


def _task_constant(spec: Dict[str, Any], task: str, parameter: str) -> Optional[str]:
    """A constant input parameter of a task in the package (None if absent)."""
    value = spec.get("root", {}).get("dag", {}).get("tasks", {}).get(task, {}).get(
        "inputs", {}).get("parameters", {}).get(parameter, {})
    return value.get("runtimeValue", {}).get("constant")


def _idx_slice(data: bytes, start: int, count: int) -> bytes:
    """Items [start, start+count) of an idx file (LeCun's format), header rewritten."""
    ndim = data[3]
    dims = list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))
    row = 1
    for d in dims[1:]:
        row *= d
    row *= {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[data[2]]
    body = 4 + 4 * ndim
    stop = min(start + count, dims[0])
    if start >= stop:
        raise SystemExit(f"--span-slice {start}:{count}: the file has {dims[0]} items")
    dims[0] = stop - start
    return (data[:4] + struct.pack(f">{ndim}I", *dims)
            + data[body + start * row:body + stop * row])


def add_span(source: str, input_base: str, span: Optional[int] = None,
             start: Optional[int] = None, count: Optional[int] = None) -> str:
    """Copies the raw files of ``source`` to ``<input_base>/span-N/``; returns that folder.

    N: ``span``, else one more than the highest span present (0 for the
    first). With ``start``/``count`` the idx files keep only those items (the
    same real images and labels, a smaller span); other files are copied as
    they are. The folder appears complete (written beside it, then renamed).
    """
    if input_base.startswith(("gs://", "s3://")) or not os.path.isabs(input_base):
        raise SystemExit(f"input base {input_base!r}: not a local absolute path "
                         "(compile with --pipeline-root/--input-base under this root)")
    os.makedirs(input_base, mode=0o777, exist_ok=True)
    if span is None:
        present = [int(m.group(1)) for m in map(_SPAN_DIR.match, os.listdir(input_base)) if m]
        span = max(present) + 1 if present else 0
    target = os.path.join(input_base, f"span-{span}")
    if os.path.exists(target):
        raise SystemExit(f"{target} exists")
    tmp = os.path.join(input_base, f".span-{span}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp, mode=0o777)
    for name in sorted(os.listdir(source)):
        src = os.path.join(source, name)
        if not os.path.isfile(src) or name.startswith("."):
            continue
        dst = os.path.join(tmp, name)
        if start is not None and _IDX.search(name):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(src, "rb") as f:
                data = _idx_slice(f.read(), start, count)
            if name.endswith(".gz"):
                with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                    f.write(data)
            else:
                with open(dst, "wb") as f:
                    f.write(data)
        else:
            shutil.copyfile(src, dst)
    os.rename(tmp, target)
    return target


def _jsonable(value: Any) -> Any:
    if isinstance(value, dsl.Artifact):
        return {"schema_title": type(value).schema_title, "name": value.name,
                "uri": value.uri, "metadata": value.metadata}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _install(recorder: _Recorder, declared_artifact_types: bool = False) -> None:
    wrapped = recorder.wrap_execute(task_executor.execute_single_task)
    # both DAG orchestrators call it as task_executor.execute_single_task (the
    # plain one imports the module inside run_dag)
    task_executor.execute_single_task = wrapped
    assert enhanced_dag_orchestrator.task_executor is task_executor
    cache_module.LocalCache.get = recorder.wrap_cache_get(cache_module.LocalCache.get)
    docker_task_handler.run_docker_container = _run_container
    _separate_outputs()
    if declared_artifact_types:
        _keep_artifact_types()
    assert task_dispatcher.placeholder_utils is placeholder_utils
    placeholder_utils.replace_placeholders = recorder.wrap_replace_placeholders(
        placeholder_utils.replace_placeholders)


def _parse_params(pairs: List[str], root_inputs: Dict[str, Any]) -> Dict[str, Any]:
    declared = root_inputs.get("parameters", {})
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"--param {pair!r}: expected KEY=VALUE")
        if key not in declared:
            raise SystemExit(f"--param {key}: not a pipeline parameter "
                             f"(the package declares: {', '.join(sorted(declared)) or 'none'})")
        cast = _PARAM_TYPES.get(declared[key].get("parameterType"), str)
        try:
            out[key] = cast(raw)
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            raise SystemExit(f"--param {key}={raw!r}: not a {declared[key].get('parameterType')}: {e}")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--package", required=True, help="compiled pipeline YAML")
    p.add_argument("--pipeline-root", required=True,
                   help="local folder: task outputs, cache, and the data the steps read")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline parameter (repeatable), typed as the package declares it")
    p.add_argument("--summary", help="JSON summary file (default: <root>/kfp_local_summary.json)")
    p.add_argument("--no-cache", action="store_true", help="kfp.local caching off")
    p.add_argument("--dump-executor-inputs", metavar="DIR",
                   help="write each task's executor input and command line here")
    p.add_argument("--network-mode", default="host", help="DockerRunner network_mode")
    p.add_argument("--add-span", metavar="SRC",
                   help="before the run, copy the raw files in SRC to <input base>/span-N/ "
                        "(the package's InputSpans input_base; N: the next free number)")
    p.add_argument("--span", type=int, help="with --add-span: N")
    p.add_argument("--span-slice", metavar="START:COUNT",
                   help="with --add-span: keep idx items [START, START+COUNT) of each idx file")
    p.add_argument("--if-no-span", action="store_true",
                   help="with --add-span: only when the input base has no span yet")
    p.add_argument("--declared-artifact-types", action="store_true",
                   help="input artifacts typed as declared (tfx.Examples, ...), not as "
                        "kfp.local's system.Artifact (see _keep_artifact_types)")
    p.add_argument("--stage-only", action="store_true", help="stage the data, run nothing")
    args = p.parse_args(argv)

    root = os.path.abspath(args.pipeline_root)
    package = os.path.abspath(args.package)
    with open(package) as f:
        spec = next(yaml.safe_load_all(f))
    params = _parse_params(args.param, spec.get("root", {}).get("inputDefinitions", {}))
    all_tasks = list(spec.get("root", {}).get("dag", {}).get("tasks", {}))

    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o777)  # the image's non-root user writes the task folders
    os.umask(0)            # and into what this process creates (cache entries)
    summary_path = args.summary or os.path.join(root, "kfp_local_summary.json")
    input_base = _task_constant(spec, "InputSpans", "input_base")
    push_destination = _task_constant(spec, "LatestPushedVersion", "push_destination")
    if args.add_span:
        if not input_base:
            raise SystemExit("--add-span: the package has no InputSpans task (compile with --spans)")
        has_span = os.path.isdir(input_base) and any(map(_SPAN_DIR.match, os.listdir(input_base)))
        if not (args.if_no_span and has_span):
            start = count = None
            if args.span_slice:
                a, _, b = args.span_slice.partition(":")
                start, count = int(a), int(b)
            print(f"kfp_local_run: staged {add_span(args.add_span, input_base, args.span, start, count)}")
    if args.stage_only:
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    recorder = _Recorder(args.dump_executor_inputs)
    _install(recorder, args.declared_artifact_types)
    local.init(runner=local.DockerRunner(network_mode=args.network_mode),
               pipeline_root=root, raise_on_error=False,
               enable_caching=not args.no_cache)
    pipeline = kfp.components.load_component_from_file(package)

    start = time.time()
    error = None
    try:
        task = pipeline(**params)
        pipeline_outputs = _jsonable(getattr(task, "outputs", {}) or {})
    except Exception as e:  # kfp.local raises for spec problems it cannot run
        error = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        pipeline_outputs = {}

    for name, record in recorder.tasks.items():
        if record.get("state") == "succeeded" and record.get("task_root"):
            out_file = os.path.join(record["task_root"], "executor_output.json")
            declared = spec["components"].get(record.get("component", ""), {}).get(
                "outputDefinitions", {}).get("artifacts", {})
            if declared and not os.path.exists(out_file) and not any(
                    os.path.exists(a.get("uri", "")) for v in (record.get("outputs") or {}).values()
                    for a in (v if isinstance(v, list) else [v]) if isinstance(a, dict)):
                record["state"] = "failed"
                record["error"] = "container reported success but wrote none of its outputs"
    failed = [n for n, r in recorder.tasks.items() if r.get("state") == "failed"]
    summary = {
        "package": package,
        "pipeline": spec.get("pipelineInfo", {}).get("name"),
        "pipeline_root": root,
        "image": sorted({e.get("container", {}).get("image") for e in
                         spec.get("deploymentSpec", {}).get("executors", {}).values()} - {None}),
        "docker_host": os.environ.get("DOCKER_HOST"),
        "input_base": input_base,
        "push_destination": push_destination,
        "caching": not args.no_cache,
        "parameters": params,
        "seconds": round(time.time() - start, 1),
        "state": "failed" if failed or error else "succeeded",
        "failed_tasks": failed,
        "error": error,
        "tasks": {n: recorder.tasks.get(n, {"state": "not_run"}) for n in all_tasks},
        "outputs": pipeline_outputs,
    }
    text = json.dumps(summary, indent=2, sort_keys=False, default=str)
    with open(summary_path, "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"\nkfp_local_run: summary in {summary_path}")
    for name in all_tasks:
        print(f"  {name:24s} {summary['tasks'][name].get('state')}")
    if failed or error:
        print(f"kfp_local_run: FAILED: {', '.join(failed) or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
